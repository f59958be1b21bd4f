"""darooghe.error_logs -> `error_summary`: invalid records per error code and hour.

Counts cannot be upserted, and `$inc` next to an offset write would double count after a crash
(FerretDB has no transactions, so the two writes can never be one step). So the counts themselves
are kept in the sink's offsets document, saved with the offsets in one document write (atomic), and
the summary documents are rewritten from them with absolute counts: reading a chunk twice rewrites
the same numbers. Counts of hours older than the topic's retention before the newest hour are
dropped, as the topic drops their records, so the state stays bounded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe import topics
from darooghe.kafka_io import CHUNK_RECORDS
from darooghe.kafka_to_mongo.dead_letters import DeadLetters
from darooghe.kafka_to_mongo.loop import (
    SinkRecordError,
    SinkReport,
    SinkState,
    default_dead_letters,
    floor_hour,
    parse_time,
    record_object,
    run_sink,
    save_state,
    write_replacements,
)
from darooghe.records import Record
from darooghe.schema import format_timestamp


def error_hour(record: Record, value: dict) -> datetime:
    """Hour (UTC) of the invalid record's arrival: its source timestamp, else the error record's."""
    source = value.get("source") if isinstance(value.get("source"), dict) else {}
    stamp = source.get("timestamp")
    if stamp is not None:
        try:
            return floor_hour(parse_time(stamp, "source.timestamp"))
        except SinkRecordError:
            pass
    return floor_hour(datetime.fromtimestamp(record.timestamp / 1000, UTC))


def error_keys(topic: str, record: Record) -> list[str]:
    """The summary ids (`<code>|<hour>`) one error record counts in: each code once, at the hour of
    the invalid record's arrival. SinkRecordError when the record is no error record."""
    where, value = record_object(topic, record)
    codes = value.get("error_codes")
    if not isinstance(codes, list) or not codes:
        raise SinkRecordError(f"{where}: expected a non-empty list 'error_codes', got {codes!r}")
    bad = [c for c in codes if not isinstance(c, str) or not c or "|" in c]
    if bad:
        raise SinkRecordError(f"{where}: error codes must be non-empty strings, got {bad[0]!r}")
    hour = format_timestamp(error_hour(record, value))
    return [f"{code}|{hour}" for code in dict.fromkeys(codes)]  # a code counts once per record


def count_errors(records: Iterable[Record]) -> Counter:
    """(code, hour) -> number of invalid records carrying that code in that hour (unit helper)."""
    counts: Counter = Counter()
    for record in records:
        for key in error_keys("error log", record):
            code, hour = key.split("|")
            counts[(code, parse_time(hour, "hour"))] += 1
    return counts


def error_summary_document(key: str, count: int, now: datetime) -> dict:
    code, hour = key.split("|")
    return {
        "_id": key,
        "code": code,
        "hour": parse_time(hour, "hour"),
        "count": count,
        "updated_at": now,
    }


def sink_error_summary(
    db: Database,
    consumer: Consumer,
    topic: str = topics.ERROR_LOGS.name,
    collection: str = mc.ERROR_SUMMARY,
    log: Callable[[str], None] = print,
    dead_letters: DeadLetters | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SinkReport:
    """Count the error records that arrived since the last run into the summary by code and hour.

    The counts live in the sink's state (with its offsets); each chunk rewrites the summary
    documents whose counts it changed, with their absolute counts. After the last chunk, hours
    older than the topic's retention before the newest hour, and documents the counts do not hold
    (a previous version's), are removed.
    """
    dead_letters = dead_letters or default_dead_letters(collection)
    coll = db[collection]
    counts: dict[str, int] = {}
    loaded = False

    def current(state: SinkState) -> dict[str, int]:
        # Stored as {"id", "n"} items: the ids hold '.', which a field name may not, and FerretDB
        # stores no nested arrays.
        nonlocal loaded
        if not loaded:
            counts.update({str(c["id"]): int(c["n"]) for c in state.extra.get("counts", [])})
            loaded = True
        return counts

    def keep(state: SinkState) -> None:
        state.extra["counts"] = [{"id": k, "n": n} for k, n in sorted(counts.items())]

    def write(key_lists: list[list[str]], report: SinkReport, state: SinkState) -> None:
        current(state)
        changed = set()
        for keys in key_lists:
            for key in keys:
                counts[key] = counts.get(key, 0) + 1
                changed.add(key)
        keep(state)
        now = datetime.now(UTC)
        documents = [error_summary_document(k, counts[k], now) for k in sorted(changed)]
        report.documents_written += write_replacements(db, collection, documents)

    def finish(report: SinkReport, state: SinkState) -> None:
        current(state)
        if counts:
            newest = max(parse_time(k.split("|")[1], "hour") for k in counts)
            oldest = newest - timedelta(milliseconds=topics.RETENTION_MS)
            expired = [k for k in counts if parse_time(k.split("|")[1], "hour") < oldest]
            for key in expired:
                del counts[key]
            if expired:
                keep(state)
                save_state(db, collection, topic, state)
        stray = [d["_id"] for d in coll.find({}, {"_id": 1}) if d["_id"] not in counts]
        if stray:
            report.documents_deleted += coll.delete_many({"_id": {"$in": stray}}).deleted_count

    return run_sink(
        db,
        consumer,
        topic,
        collection,
        lambda record: error_keys(topic, record),
        write,
        dead_letters,
        log,
        finish=finish,
        chunk_records=chunk_records,
    )
