"""darooghe.metrics.* -> the four live-metric collections.

Every value carries a deterministic `metric_id` (darooghe.streaming.metric_contract), so writes are
upserts and replaying a record changes nothing. The top-merchants topic is the exception to plain
upserts: it carries rankings, and a window's ranking is replaced as a whole (`rank_top_merchants`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

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
    check_storable,
    default_dead_letters,
    parse_time,
    record_object,
    run_sink,
    utc,
    write_replacements,
)
from darooghe.records import Record
from darooghe.schema import EPOCH, format_timestamp
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
        start, end = (format_timestamp(utc(doc[f])) for f in ("window_start", "window_end"))
        window = f"{start}|{end}"
        ranking.append({**doc, "_id": f"{window}|{rank}", "rank": rank})
    return ranking


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
        key = (utc(doc["window_start"]), utc(doc["window_end"]))
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
    report.documents_written += write_replacements(db, collection, rankings)
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
            report.documents_written += write_replacements(db, collection, latest)

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
