"""Kafka -> MongoDB sinks for what the real-time layer publishes: live metrics and the error log.

Two strategies, each the simplest one that is idempotent on FerretDB (no transactions, so a write to
a collection and a write of consumed offsets can never be one atomic step):

- Live metrics: every value carries a deterministic `metric_id`, so writes are upserts and replaying
  a record changes nothing. Consumed offsets are kept in the `sink_offsets` collection and saved
  *after* the upserts: a crash in between re-reads a few records and upserts them again, harmlessly.
  The top-merchants topic is the exception to plain upserts: it carries rankings, and a window's
  ranking is replaced as a whole (see `rank_top_merchants`).
- Error-log summary (counts per code and hour): counts cannot be upserted, and `$inc` next to an
  offset write would double count after a crash. So each run recounts the whole `darooghe.error_logs`
  topic and replaces the summary. The topic holds only invalid records (a few percent of traffic),
  so a full read is cheap, and a re-run gives exactly the same documents.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pymongo.database import Database

from darooghe import topics
from darooghe.kafka_io import UnknownTopicError, message_to_record
from darooghe.mongo_write import replace_by_id
from darooghe.records import Record

LIVE_CATEGORY_VOLUME = "live_category_volume"
LIVE_COMMISSION_BY_TYPE = "live_commission_by_type"
LIVE_COMMISSION_RATIO = "live_commission_ratio"
LIVE_TOP_MERCHANTS = "live_top_merchants"
ERROR_SUMMARY = "error_summary"
#: consumed offsets of the metric sinks: _id = "<collection>|<topic>", offsets = {"<partition>": next}
SINK_OFFSETS = "sink_offsets"

#: metrics topic name -> collection it is sunk into
METRIC_COLLECTIONS = {
    topics.METRICS_CATEGORY_VOLUME.name: LIVE_CATEGORY_VOLUME,
    topics.METRICS_COMMISSION_BY_TYPE.name: LIVE_COMMISSION_BY_TYPE,
    topics.METRICS_COMMISSION_RATIO.name: LIVE_COMMISSION_RATIO,
    topics.METRICS_TOP_MERCHANTS.name: LIVE_TOP_MERCHANTS,
}
#: the field that, with the window, identifies one metric value (used only when metric_id is missing)
METRIC_GROUP_FIELD = {
    topics.METRICS_CATEGORY_VOLUME.name: "merchant_category",
    topics.METRICS_COMMISSION_BY_TYPE.name: "commission_type",
    topics.METRICS_COMMISSION_RATIO.name: "merchant_category",
    topics.METRICS_TOP_MERCHANTS.name: "merchant_id",
}
TOP_MERCHANTS_RANKS = 5
_WRITE_CHUNK = 1000


class SinkRecordError(ValueError):
    """A record on a sunk topic that does not have the agreed shape."""


@dataclass
class SinkReport:
    topic: str
    collection: str
    records_read: int = 0
    documents_written: int = 0
    documents_deleted: int = 0
    skipped: int = 0
    first_skip_reason: str | None = None
    offsets: dict[int, int] = field(default_factory=dict)
    collection_count: int = 0
    seconds: float = 0.0

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if self.first_skip_reason is None:
            self.first_skip_reason = reason

    def summary(self) -> str:
        text = (
            f"{self.topic} -> {self.collection}: {self.records_read} records read, "
            f"{self.documents_written} documents written, {self.documents_deleted} deleted, "
            f"{self.skipped} skipped, {self.collection_count} in collection ({self.seconds:.1f} s)"
        )
        if self.first_skip_reason:
            text += f"; first skip: {self.first_skip_reason}"
        return text


# --- time -----------------------------------------------------------------------------------------
def parse_time(value: object, what: str) -> datetime:
    """An ISO-8601 string (with Z or an offset) or epoch milliseconds, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise SinkRecordError(
            f"{what}: expected an ISO-8601 time or epoch milliseconds, got {value!r}"
        )
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)  # Python 3.11 reads the "Z" suffix
        except ValueError:
            raise SinkRecordError(f"{what}: {value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise SinkRecordError(f"{what}: expected an ISO-8601 time or epoch milliseconds, got {value!r}")


def iso_z(moment: datetime) -> str:
    """Millisecond ISO-8601 with Z, the project's wire format for times."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --- reading Kafka --------------------------------------------------------------------------------
def topic_partitions(consumer: Consumer, topic: str) -> list[int]:
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise UnknownTopicError(f"unknown topic {topic!r}: the broker has no such topic")
    return sorted(meta.partitions)


def end_offsets(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """partition -> (low, high) watermarks of `topic`."""
    return {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        for p in topic_partitions(consumer, topic)
    }


def read_to_end(
    consumer: Consumer,
    topic: str,
    start: dict[int, int] | None = None,
    idle_timeout: float = 5.0,
) -> tuple[list[Record], dict[int, int]]:
    """Records of `topic` from `start` (partition -> offset; default: the beginning) to its end now.

    Returns the records and, per partition, the offset to start from next time. The consumer is
    assigned explicitly (no group), so nothing is committed to the broker.
    """
    start = start or {}
    next_offsets: dict[int, int] = {}
    assignment = []
    for p, (low, high) in end_offsets(consumer, topic).items():
        # Offsets below `low` were removed by retention; start where the log now begins.
        begin = max(start.get(p, low), low)
        next_offsets[p] = begin
        if begin < high:
            assignment.append(TopicPartition(topic, p, begin))
    if not assignment:
        return [], next_offsets
    consumer.assign(assignment)
    records: list[Record] = []
    pending = {tp.partition for tp in assignment}
    last_progress = time.monotonic()
    try:
        while pending:
            messages = consumer.consume(5000, timeout=0.5)
            if not messages and time.monotonic() - last_progress > idle_timeout:
                break  # read_committed: an open transaction holds the end below the high watermark
            for m in messages:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        next_offsets[m.partition()] = max(next_offsets[m.partition()], m.offset())
                        pending.discard(m.partition())
                        continue
                    raise KafkaException(m.error())
                last_progress = time.monotonic()
                records.append(message_to_record(m))
                next_offsets[m.partition()] = m.offset() + 1
    finally:
        consumer.unassign()
    return records, next_offsets


def load_offsets(db: Database, collection: str, topic: str) -> dict[int, int]:
    doc = db[SINK_OFFSETS].find_one({"_id": f"{collection}|{topic}"})
    return {int(p): int(o) for p, o in (doc or {}).get("offsets", {}).items()}


def save_offsets(db: Database, collection: str, topic: str, offsets: dict[int, int]) -> None:
    db[SINK_OFFSETS].replace_one(
        {"_id": f"{collection}|{topic}"},
        {
            "collection": collection,
            "topic": topic,
            "offsets": {str(p): o for p, o in sorted(offsets.items())},
            "updated_at": datetime.now(UTC),
        },
        upsert=True,
    )


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
        # The streaming job should send metric_id; derive the same kind of id rather than drop data.
        basis = f"{topic}|{iso_z(value['window_start'])}|{iso_z(value['window_end'])}|{value[group_field]}"
        metric_id = hashlib.sha1(basis.encode()).hexdigest()
        value["metric_id"] = metric_id
    value["_id"] = str(metric_id)
    value["source"] = {"topic": topic, "partition": record.partition, "offset": record.offset}
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
    ordered = sorted(
        latest.values(),
        key=lambda d: (-float(d.get("total_commission") or 0), str(d["merchant_id"])),
    )[:ranks]
    ranking = []
    for rank, doc in enumerate(ordered, start=1):
        window = f"{iso_z(doc['window_start'])}|{iso_z(doc['window_end'])}"
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
    t0 = time.monotonic()
    report = SinkReport(topic=topic, collection=collection)
    start = load_offsets(db, collection, topic)
    records, next_offsets = read_to_end(consumer, topic, start)
    report.records_read = len(records)
    log(f"{topic}: read {len(records)} new records from offsets {start or 'the beginning'}")
    documents = []
    for record in records:
        try:
            documents.append(metric_document(shape, record))
        except SinkRecordError as exc:
            report.skip(str(exc))
    if shape == topics.METRICS_TOP_MERCHANTS.name:
        _write_top_merchants(db, collection, documents, report)
    else:
        report.documents_written = _write_replacements(
            db, collection, list(_latest_by_id(documents).values())
        )
    save_offsets(db, collection, topic, next_offsets)
    report.offsets = next_offsets
    report.collection_count = db[collection].count_documents({})
    report.seconds = time.monotonic() - t0
    log(report.summary())
    return report


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


def count_errors(records: Iterable[Record], report: SinkReport | None = None) -> Counter:
    """(code, hour) -> number of invalid records carrying that code in that hour."""
    counts: Counter = Counter()
    for record in records:
        try:
            value = json.loads(record.value)
        except json.JSONDecodeError as exc:
            if report:
                report.skip(
                    f"partition {record.partition} offset {record.offset}: not JSON ({exc.msg})"
                )
            continue
        codes = value.get("error_codes") if isinstance(value, dict) else None
        if not isinstance(codes, list) or not codes:
            if report:
                report.skip(
                    f"partition {record.partition} offset {record.offset}: "
                    f"expected a non-empty list 'error_codes', got {codes!r}"
                )
            continue
        hour = error_hour(record, value)
        for code in dict.fromkeys(str(c) for c in codes):  # a code counts once per record
            counts[(code, hour)] += 1
    return counts


def error_summary_documents(counts: Counter, run_id: str, now: datetime) -> list[dict]:
    return [
        {
            "_id": f"{code}|{iso_z(hour)}",
            "code": code,
            "hour": hour,
            "count": n,
            "run_id": run_id,
            "updated_at": now,
        }
        for (code, hour), n in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]


def sink_error_summary(
    db: Database,
    consumer: Consumer,
    topic: str = topics.ERROR_LOGS.name,
    collection: str = ERROR_SUMMARY,
    log: Callable[[str], None] = print,
) -> SinkReport:
    """Recount the whole error-log topic by code and hour and replace the summary collection."""
    t0 = time.monotonic()
    report = SinkReport(topic=topic, collection=collection)
    records, next_offsets = read_to_end(consumer, topic)
    report.records_read = len(records)
    log(f"{topic}: read {len(records)} error records")
    counts = count_errors(records, report)
    run_id = uuid.uuid4().hex
    documents = error_summary_documents(counts, run_id, datetime.now(UTC))
    # Upsert first, then drop what this run did not produce: the collection is never empty mid-run.
    report.documents_written = _write_replacements(db, collection, documents)
    report.documents_deleted = db[collection].delete_many({"run_id": {"$ne": run_id}}).deleted_count
    report.offsets = next_offsets
    report.collection_count = db[collection].count_documents({})
    report.seconds = time.monotonic() - t0
    log(report.summary())
    return report
