"""Kafka -> MongoDB sinks for what the real-time layer publishes: live metrics and the error log.

Every sink runs the same loop (`run_sink`): it reads its topic from the offsets it saved last time
in bounded chunks (CHUNK_RECORDS records or CHUNK_BYTES bytes, whichever comes first), turns each
record into what it stores, writes the chunk, and only then saves the offsets after it (in
`sink_offsets`). Memory is one chunk whatever the backlog, and a crash mid-backlog resumes after the
last chunk written. A record that cannot be stored, for whatever reason, is not a reason to stop:
it goes to the dead-letter topic (darooghe.sink_dead_letters) with its source and the error, is
counted in the sink's offsets document, and the sink's asset check fails while any exist. Records
read = records stored + records dead-lettered, for every run. One run at a time holds the sink
(darooghe.sink_lock).

FerretDB has no transactions, so a write to a collection and a write of consumed offsets can never
be one atomic step; each sink is therefore idempotent when a chunk is read twice:

- Live metrics: every value carries a deterministic `metric_id`, so writes are upserts and replaying
  a record changes nothing. The top-merchants topic is the exception to plain upserts: it carries
  rankings, and a window's ranking is replaced as a whole (see `rank_top_merchants`).
- Error-log summary (counts per code and hour): counts cannot be upserted, and `$inc` next to an
  offset write would double count after a crash. So the counts themselves are kept in the sink's
  offsets document, saved with the offsets in one document write (atomic), and the summary
  documents are rewritten from them with absolute counts: reading a chunk twice rewrites the same
  numbers. Counts of hours older than the topic's retention before the newest hour are dropped, as
  the topic drops their records, so the state stays bounded.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe import topics
from darooghe.kafka_io import CHUNK_BYTES, CHUNK_RECORDS, message_to_record, read_chunks
from darooghe.mongo_write import replace_by_id
from darooghe.records import Record
from darooghe.schema import EPOCH, format_timestamp
from darooghe.sink_dead_letters import DeadLetters
from darooghe.sink_lock import sink_lease
from darooghe.streaming import metric_contract
from darooghe.streaming.metric_contract import TOP_MERCHANTS_RANKS

#: metrics topic name -> collection it is sunk into
METRIC_COLLECTIONS = {
    topics.METRICS_CATEGORY_VOLUME.name: mc.LIVE_CATEGORY_VOLUME,
    topics.METRICS_COMMISSION_BY_TYPE.name: mc.LIVE_COMMISSION_BY_TYPE,
    topics.METRICS_COMMISSION_RATIO.name: mc.LIVE_COMMISSION_RATIO,
    topics.METRICS_TOP_MERCHANTS.name: mc.LIVE_TOP_MERCHANTS,
}
#: the field that, with the window, identifies one metric value (used only when metric_id is missing)
METRIC_GROUP_FIELD = {
    topics.METRICS_CATEGORY_VOLUME.name: "merchant_category",
    topics.METRICS_COMMISSION_BY_TYPE.name: "commission_type",
    topics.METRICS_COMMISSION_RATIO.name: "merchant_category",
    topics.METRICS_TOP_MERCHANTS.name: "merchant_id",
}
_WRITE_CHUNK = 1000
#: Consumer settings of a sink: the client's read-ahead queue bounded near one chunk (its default
#: is 64 MB), so a backlog is never buffered in full outside the chunk either.
CONSUMER_CONFIG = {"queued.max.messages.kbytes": 16 * 1024, "fetch.max.bytes": 8 * 1024 * 1024}


class SinkRecordError(ValueError):
    """A record on a sunk topic that does not have the agreed shape."""


@dataclass
class SinkReport:
    topic: str
    collection: str
    records_read: int = 0
    records_stored: int = 0
    documents_written: int = 0
    documents_deleted: int = 0
    dead_lettered: int = 0
    first_dead_letter: str | None = None
    #: every record this sink dead-lettered so far, this run included (kept with its offsets)
    dead_letters_total: int = 0
    chunks: int = 0
    offsets: dict[int, int] = field(default_factory=dict)
    collection_count: int = 0
    seconds: float = 0.0

    def dead_letter(self, reason: str) -> None:
        self.dead_lettered += 1
        self.dead_letters_total += 1
        if self.first_dead_letter is None:
            self.first_dead_letter = reason

    def summary(self) -> str:
        text = (
            f"{self.topic} -> {self.collection}: {self.records_read} records read in "
            f"{self.chunks} chunk(s), {self.records_stored} stored, {self.dead_lettered} "
            f"dead-lettered; {self.documents_written} documents written, {self.documents_deleted} "
            f"deleted, {self.collection_count} in collection ({self.seconds:.1f} s)"
        )
        if self.first_dead_letter:
            text += f"; first dead letter: {self.first_dead_letter}"
        return text


# --- time -----------------------------------------------------------------------------------------
def parse_time(value: object, what: str) -> datetime:
    """An ISO-8601 string (with Z or an offset) or epoch milliseconds, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise SinkRecordError(
            f"{what}: expected an ISO-8601 time or epoch milliseconds, got {value!r}"
        )
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise SinkRecordError(f"{what}: {value!r} ms is not a representable time") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)  # Python 3.11 reads the "Z" suffix
        except ValueError:
            raise SinkRecordError(f"{what}: {value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise SinkRecordError(f"{what}: expected an ISO-8601 time or epoch milliseconds, got {value!r}")


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _offsets_id(collection: str, topic: str) -> str:
    return f"{collection}|{topic}"


@dataclass
class SinkState:
    """What a sink keeps between runs, in one `sink_offsets` document (so written atomically)."""

    offsets: dict[int, int] = field(default_factory=dict)
    dead_letters: int = 0
    #: sink-specific state that must move with the offsets (the error summary's counts)
    extra: dict = field(default_factory=dict)


def load_state(db: Database, collection: str, topic: str) -> SinkState:
    doc = db[mc.SINK_OFFSETS].find_one({"_id": _offsets_id(collection, topic)}) or {}
    return SinkState(
        offsets={int(p): int(o) for p, o in doc.get("offsets", {}).items()},
        dead_letters=int(doc.get("dead_letters", 0)),
        extra=dict(doc.get("state") or {}),
    )


def save_state(db: Database, collection: str, topic: str, state: SinkState) -> None:
    db[mc.SINK_OFFSETS].replace_one(
        {"_id": _offsets_id(collection, topic)},
        {
            "collection": collection,
            "topic": topic,
            "offsets": {str(p): o for p, o in sorted(state.offsets.items())},
            "dead_letters": state.dead_letters,
            "state": state.extra,
            "updated_at": datetime.now(UTC),
        },
        upsert=True,
    )


def load_offsets(db: Database, collection: str, topic: str) -> dict[int, int]:
    return load_state(db, collection, topic).offsets


def dead_letter_count(db: Database, collection: str, topic: str) -> int:
    """How many records the sink of `topic` into `collection` has dead-lettered, ever."""
    return load_state(db, collection, topic).dead_letters


def run_sink(
    db: Database,
    consumer: Consumer,
    topic: str,
    collection: str,
    convert: Callable[[Record], object],
    write: Callable[[list, SinkReport, SinkState], None],
    dead_letters: DeadLetters,
    log: Callable[[str], None] = print,
    finish: Callable[[SinkReport, SinkState], None] | None = None,
    chunk_records: int = CHUNK_RECORDS,
    chunk_bytes: int = CHUNK_BYTES,
) -> SinkReport:
    """The loop of every sink: chunk by chunk, convert, write, send dead letters, save offsets.

    `convert` turns one record into what `write` stores; any exception it raises is that record's
    fault and dead-letters it (the sink goes on). `write` stores a chunk's results (and may update
    `state.extra`); errors there are the store's and stop the run before the offsets move.
    `finish` runs once after the last chunk, with the lease still held.
    """
    t0 = time.monotonic()
    report = SinkReport(topic=topic, collection=collection)
    with sink_lease(db, _offsets_id(collection, topic)) as lease:
        state = load_state(db, collection, topic)
        report.dead_letters_total = state.dead_letters
        log(f"{topic}: reading from offsets {state.offsets or 'the beginning'}")
        for chunk in read_chunks(consumer, topic, state.offsets, chunk_records, chunk_bytes):
            results = []
            for message in chunk.messages:
                record = message_to_record(message)
                try:
                    results.append(convert(record))
                except Exception as exc:  # noqa: BLE001 - any failure of one record is that record's
                    reason = dead_letter_reason(topic, record, exc)
                    dead_letters.send(topic, message, reason)
                    report.dead_letter(reason)
            report.records_read += len(chunk.messages)
            report.records_stored += len(results)
            write(results, report, state)
            dead_letters.flush()
            lease.renew()  # still ours: no other run wrote meanwhile
            state.offsets = chunk.next_offsets
            state.dead_letters = report.dead_letters_total
            save_state(db, collection, topic, state)
            report.chunks += 1
            if chunk.messages:
                log(
                    f"{topic}: chunk {report.chunks}: {len(chunk.messages)} records, "
                    f"{report.records_read} so far, offsets saved {chunk.next_offsets}"
                )
        if finish is not None:
            finish(report, state)
    report.offsets = state.offsets
    report.collection_count = db[collection].count_documents({})
    report.seconds = time.monotonic() - t0
    log(report.summary())
    return report


def dead_letter_reason(topic: str, record: Record, exc: Exception) -> str:
    """Why a record was refused, naming it: a SinkRecordError says it all, anything else is
    prefixed with the record's coordinates and the exception type."""
    if isinstance(exc, SinkRecordError):
        return str(exc)
    where = f"{topic} partition {record.partition} offset {record.offset}"
    return f"{where}: {type(exc).__name__}: {exc}"


def default_dead_letters(sink: str) -> DeadLetters:
    """Dead letters to darooghe.sink_dead_letters through a producer of the current settings."""
    from confluent_kafka import Producer

    from darooghe.kafka_io import producer_config
    from darooghe.sink_dead_letters import PRODUCER_CONFIG

    return DeadLetters(Producer(producer_config(None, **PRODUCER_CONFIG)), sink)


def check_storable(value: object, where: str, path: str = "") -> None:
    """Refuse what FerretDB/MongoDB cannot store or chokes on: field names starting with '$' or
    containing '.' or NUL, arrays directly inside arrays (FerretDB stores none), and non-finite
    numbers (a NaN closes FerretDB's connection)."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if name.startswith("$") or "." in name or "\x00" in name:
                raise SinkRecordError(f"{where}: field name {path + name!r} cannot be stored")
            check_storable(item, where, f"{path}{name}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, list):
                raise SinkRecordError(f"{where}: field {path}{i} is an array inside an array")
            check_storable(item, where, f"{path}{i}.")
    elif isinstance(value, float) and not math.isfinite(value):
        raise SinkRecordError(f"{where}: field {path.rstrip('.') or 'value'} is {value!r}")


# --- live metrics ---------------------------------------------------------------------------------
def record_object(topic: str, record: Record) -> tuple[str, dict]:
    """A record's JSON object value and where it came from, or SinkRecordError naming the record."""
    where = f"{topic} partition {record.partition} offset {record.offset}"
    try:
        value = json.loads(record.value)
    except json.JSONDecodeError as exc:
        raise SinkRecordError(f"{where}: value is not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise SinkRecordError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return where, value


def metric_document(topic: str, record: Record) -> dict:
    """The MongoDB document of one metric record: its JSON fields, windows as datetimes, `_id`."""
    where, value = record_object(topic, record)
    for name in ("window_start", "window_end"):
        if name not in value:
            raise SinkRecordError(f"{where}: missing field {name!r}")
        value[name] = parse_time(value[name], f"{where} field {name}")
    group_field = METRIC_GROUP_FIELD[topic]
    if value.get(group_field) is None:
        raise SinkRecordError(f"{where}: missing field {group_field!r}")
    metric_id = value.get("metric_id")
    if not metric_id:
        # The streaming job sends metric_id; derive the id it would have sent rather than drop data.
        start_ms = (value["window_start"] - EPOCH) // timedelta(milliseconds=1)
        metric_id = metric_contract.metric_id(topic, start_ms, str(value[group_field]))
        value["metric_id"] = metric_id
    if topic == topics.METRICS_TOP_MERCHANTS.name:
        commission = value.get("total_commission")
        if isinstance(commission, bool) or not isinstance(commission, (int, float, type(None))):
            raise SinkRecordError(f"{where}: total_commission must be a number, got {commission!r}")
    value["_id"] = str(metric_id)
    value["source"] = {"topic": topic, "partition": record.partition, "offset": record.offset}
    check_storable(value, where)
    return value


def _latest_by_id(documents: Iterable[dict]) -> dict[str, dict]:
    """Keep the last document per _id: a streaming update re-emits a window's growing value."""
    return {doc["_id"]: doc for doc in documents}


def rank_top_merchants(candidates: Iterable[dict], ranks: int = TOP_MERCHANTS_RANKS) -> list[dict]:
    """The ranking of one window from every value seen for it, later values per merchant winning.

    Within a window a merchant's commission only grows, so the true top `ranks` are the largest
    latest values; merging the stored ranking with new records is therefore right whatever the
    streaming job's output mode (a full re-ranking per trigger, or only the changed rows).
    """
    latest: dict[str, dict] = {}
    for doc in candidates:
        latest[str(doc["merchant_id"])] = doc
    ordered = metric_contract.top_ranked(
        latest.values(),
        lambda d: str(d["merchant_id"]),
        lambda d: float(d.get("total_commission") or 0),
        ranks,
    )
    ranking = []
    for rank, doc in ordered:
        start, end = (format_timestamp(_utc(doc[f])) for f in ("window_start", "window_end"))
        window = f"{start}|{end}"
        ranking.append({**doc, "_id": f"{window}|{rank}", "rank": rank})
    return ranking


def _write_replacements(db: Database, collection: str, documents: list[dict]) -> int:
    replace_by_id(db[collection], documents, _WRITE_CHUNK)
    return len(documents)


def _utc(moment: datetime) -> datetime:
    """A stored datetime as aware UTC (clients without tz_aware return naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _write_top_merchants(
    db: Database, collection: str, documents: list[dict], report: SinkReport
) -> None:
    windows: dict[tuple[datetime, datetime], list[dict]] = {}
    for doc in documents:
        windows.setdefault((doc["window_start"], doc["window_end"]), []).append(doc)
    coll = db[collection]
    # One read of every affected window's stored ranking (on FerretDB each query is a full scan, so
    # a query per window would rescan the collection thousands of times after a backfill).
    stored_by_window: dict[tuple[datetime, datetime], list[dict]] = {}
    starts = sorted({start for start, _ in windows})
    for doc in coll.find({"window_start": {"$in": starts}}):
        key = (_utc(doc["window_start"]), _utc(doc["window_end"]))
        if key in windows:
            stored_by_window.setdefault(key, []).append(doc)
    rankings: list[dict] = []
    stale: list[str] = []
    for key, new_docs in windows.items():
        stored = stored_by_window.get(key, [])
        ranking = rank_top_merchants(sorted(stored, key=lambda d: d["rank"]) + new_docs)
        keep = {d["_id"] for d in ranking}
        rankings.extend(ranking)
        stale.extend(d["_id"] for d in stored if d["_id"] not in keep)
    # Replace rank by rank (never an empty window in between), then drop ranks no longer held.
    report.documents_written += _write_replacements(db, collection, rankings)
    if stale:
        report.documents_deleted += coll.delete_many({"_id": {"$in": stale}}).deleted_count


def sink_metrics(
    db: Database,
    consumer: Consumer,
    topic: str,
    shape: str | None = None,
    collection: str | None = None,
    log: Callable[[str], None] = print,
    dead_letters: DeadLetters | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SinkReport:
    """Write the records of a live-metrics topic that arrived since the last run into its collection.

    `shape` names the metrics topic whose records `topic` carries and `collection` where they go;
    both default from `topic` (tests sink a fresh topic of the same shape into a scratch collection).
    """
    shape = shape or topic
    if shape not in METRIC_COLLECTIONS:
        raise ValueError(
            f"topic {shape!r} is not a metrics topic; expected one of {sorted(METRIC_COLLECTIONS)}"
        )
    collection = collection or METRIC_COLLECTIONS[shape]
    dead_letters = dead_letters or default_dead_letters(collection)

    def write(documents: list[dict], report: SinkReport, _state: SinkState) -> None:
        if shape == topics.METRICS_TOP_MERCHANTS.name:
            _write_top_merchants(db, collection, documents, report)
        else:
            latest = list(_latest_by_id(documents).values())
            report.documents_written += _write_replacements(db, collection, latest)

    return run_sink(
        db,
        consumer,
        topic,
        collection,
        lambda record: metric_document(shape, record),
        write,
        dead_letters,
        log,
        chunk_records=chunk_records,
    )


# --- error-log summary ----------------------------------------------------------------------------
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
        report.documents_written += _write_replacements(db, collection, documents)

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
