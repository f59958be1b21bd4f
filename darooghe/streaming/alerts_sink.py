"""darooghe.fraud_alerts -> MongoDB `fraud_alerts`: upsert by alert_id, first detection wins.

The topic is at-least-once (a replayed micro-batch re-sends its alerts with a new `detected_at`), so
each document is written with `$setOnInsert` under `_id = alert_id`: the first delivery creates it,
every redelivery changes nothing. Consumed offsets are kept in `sink_offsets` and saved after the
writes (the shared sink bookkeeping of darooghe.sinks), so a crash in between re-reads a few
records, harmlessly. Times are stored as datetimes, plus `event_date` ("YYYY-MM-DD") and
`event_hour` (0-23, UTC): FerretDB has no date operators, so charts group on these fields.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer
from pymongo import ASCENDING
from pymongo.database import Database

from darooghe.fraud.rules import RULES
from darooghe.mongo_write import insert_new
from darooghe.records import Record
from darooghe.sinks import (
    SinkRecordError,
    SinkReport,
    load_offsets,
    parse_time,
    read_to_end,
    record_object,
    save_offsets,
)
from darooghe.topics import FRAUD_ALERTS

FRAUD_ALERTS_COLLECTION = "fraud_alerts"
REQUIRED = (
    "alert_id",
    "rule",
    "transaction_id",
    "customer_id",
    "event_time",
    "detected_at",
    "evidence",
    "severity",
)
_CHUNK = 1000


def alert_document(topic: str, record: Record) -> dict:
    where, value = record_object(topic, record)
    missing = [f for f in REQUIRED if f not in value]
    if missing:
        raise SinkRecordError(f"{where}: missing field(s) {', '.join(missing)}")
    if value["rule"] not in RULES:
        raise SinkRecordError(f"{where}: rule {value['rule']!r} is not one of {', '.join(RULES)}")
    doc = {name: value[name] for name in REQUIRED}
    doc["event_time"] = parse_time(value["event_time"], f"{where} field event_time")
    doc["detected_at"] = parse_time(value["detected_at"], f"{where} field detected_at")
    doc["event_date"] = doc["event_time"].strftime("%Y-%m-%d")
    doc["event_hour"] = doc["event_time"].hour
    doc["_id"] = str(value["alert_id"])
    doc["source"] = {"topic": topic, "partition": record.partition, "offset": record.offset}
    return doc


def ensure_indexes(db: Database, collection: str) -> None:
    coll = db[collection]
    coll.create_index([("event_time", ASCENDING)])
    coll.create_index([("rule", ASCENDING), ("event_date", ASCENDING)])
    coll.create_index([("customer_id", ASCENDING)])


def sink_fraud_alerts(
    db: Database,
    consumer: Consumer,
    topic: str = FRAUD_ALERTS.name,
    collection: str = FRAUD_ALERTS_COLLECTION,
    log=print,
) -> SinkReport:
    t0 = time.monotonic()
    report = SinkReport(topic=topic, collection=collection)
    records, next_offsets = read_to_end(consumer, topic, load_offsets(db, collection, topic))
    report.records_read = len(records)
    docs: dict[str, dict] = {}
    for rec in records:
        try:
            doc = alert_document(topic, rec)
        except SinkRecordError as exc:
            report.skip(str(exc))
            continue
        docs.setdefault(
            doc["_id"], doc
        )  # the first delivery in this read wins, as in the collection
    ensure_indexes(db, collection)
    # First detection wins: an alert already stored is kept, never rewritten.
    report.documents_written += insert_new(db, collection, docs.values(), _CHUNK).written
    save_offsets(db, collection, topic, next_offsets)
    report.offsets = next_offsets
    report.collection_count = db[collection].count_documents({})
    report.seconds = time.monotonic() - t0
    log(report.summary())
    return report
