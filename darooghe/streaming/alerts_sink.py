"""darooghe.fraud_alerts -> MongoDB `fraud_alerts`: upsert by alert_id, first detection wins.

The topic is at-least-once (a replayed micro-batch re-sends its alerts with a new `detected_at`), so
each document is written with `$setOnInsert` under `_id = alert_id`: the first delivery creates it,
every redelivery changes nothing. The topic is read in bounded chunks with the shared sink loop of
darooghe.sinks (offsets saved after each chunk's writes, so a crash re-reads a few records,
harmlessly; a record that cannot be stored goes to the dead-letter topic). Times are stored as datetimes, plus `event_date` ("YYYY-MM-DD") and
`event_hour` (0-23, UTC): FerretDB has no date operators, so charts group on these fields.
"""

from __future__ import annotations

from confluent_kafka import Consumer
from pymongo import ASCENDING
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.fraud.rules import RULES
from darooghe.mongo_write import insert_new
from darooghe.records import Record
from darooghe.sink_dead_letters import DeadLetters
from darooghe.sinks import (
    CHUNK_RECORDS,
    SinkRecordError,
    SinkReport,
    SinkState,
    check_storable,
    default_dead_letters,
    parse_time,
    record_object,
    run_sink,
)
from darooghe.topics import FRAUD_ALERTS

FRAUD_ALERTS_COLLECTION = mc.FRAUD_ALERTS
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
    if not isinstance(value["rule"], str) or value["rule"] not in RULES:
        raise SinkRecordError(f"{where}: rule {value['rule']!r} is not one of {', '.join(RULES)}")
    doc = {name: value[name] for name in REQUIRED}
    doc["event_time"] = parse_time(value["event_time"], f"{where} field event_time")
    doc["detected_at"] = parse_time(value["detected_at"], f"{where} field detected_at")
    doc["event_date"] = doc["event_time"].strftime("%Y-%m-%d")
    doc["event_hour"] = doc["event_time"].hour
    doc["_id"] = str(value["alert_id"])
    doc["source"] = {"topic": topic, "partition": record.partition, "offset": record.offset}
    check_storable(doc, where)
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
    dead_letters: DeadLetters | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SinkReport:
    dead_letters = dead_letters or default_dead_letters(collection)
    ensure_indexes(db, collection)

    def write(documents: list[dict], report: SinkReport, _state: SinkState) -> None:
        docs: dict[str, dict] = {}
        for doc in documents:
            docs.setdefault(
                doc["_id"], doc
            )  # the first delivery in this chunk wins, as in the collection
        # First detection wins: an alert already stored is kept, never rewritten.
        report.documents_written += insert_new(db, collection, docs.values(), _CHUNK).written

    return run_sink(
        db,
        consumer,
        topic,
        collection,
        lambda record: alert_document(topic, record),
        write,
        dead_letters,
        log,
        chunk_records=chunk_records,
    )
