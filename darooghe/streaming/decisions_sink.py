"""darooghe.fraud_decisions -> MongoDB `fraud_decisions`: one document per transaction.

The fraud job writes a decision (REVIEW or BLOCK) in the same Kafka transaction as the alerts of
its micro-batch, so the topic holds each decision once. A transaction whose alerts came in two
micro-batches has a decision from each (darooghe.fraud.decisions); the later one (in topic order)
replaces the earlier under `_id = transaction_id`. The topic is read in bounded chunks with the
shared sink loop of darooghe.sinks, like the alerts (offsets saved after each chunk, dead letters
for records that cannot be stored); `event_date`/`event_hour` and `decided_date`/`decided_hour`
(UTC) are stored for charts, as FerretDB has no date operators.
"""

from __future__ import annotations

from confluent_kafka import Consumer
from pymongo import ASCENDING
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.fraud.ruleset import DECISIONS
from darooghe.mongo_write import replace_by_id
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
from darooghe.topics import FRAUD_DECISIONS

FRAUD_DECISIONS_COLLECTION = mc.FRAUD_DECISIONS
REQUIRED = (
    "transaction_id",
    "customer_id",
    "event_time",
    "score",
    "decision",
    "rules",
    "rule_set_version",
    "decided_at",
)
_CHUNK = 1000


def decision_document(topic: str, record: Record) -> dict:
    where, value = record_object(topic, record)
    missing = [f for f in REQUIRED if f not in value]
    if missing:
        raise SinkRecordError(f"{where}: missing field(s) {', '.join(missing)}")
    if value["decision"] not in DECISIONS:
        raise SinkRecordError(
            f"{where}: decision {value['decision']!r} is not one of {', '.join(DECISIONS)}"
        )
    doc = {name: value[name] for name in (*REQUIRED, "risk_level") if name in value}
    doc["event_time"] = parse_time(value["event_time"], f"{where} field event_time")
    doc["decided_at"] = parse_time(value["decided_at"], f"{where} field decided_at")
    doc["event_date"] = doc["event_time"].strftime("%Y-%m-%d")
    doc["event_hour"] = doc["event_time"].hour
    doc["decided_date"] = doc["decided_at"].strftime("%Y-%m-%d")
    doc["decided_hour"] = doc["decided_at"].hour
    doc["_id"] = str(value["transaction_id"])
    doc["source"] = {"topic": topic, "partition": record.partition, "offset": record.offset}
    check_storable(doc, where)
    return doc


def ensure_indexes(db: Database, collection: str) -> None:
    coll = db[collection]
    coll.create_index([("decided_at", ASCENDING)])
    coll.create_index([("decision", ASCENDING), ("event_date", ASCENDING)])
    coll.create_index([("customer_id", ASCENDING)])


def sink_fraud_decisions(
    db: Database,
    consumer: Consumer,
    topic: str = FRAUD_DECISIONS.name,
    collection: str = FRAUD_DECISIONS_COLLECTION,
    log=print,
    dead_letters: DeadLetters | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SinkReport:
    dead_letters = dead_letters or default_dead_letters(collection)
    ensure_indexes(db, collection)

    def write(documents: list[dict], report: SinkReport, _state: SinkState) -> None:
        latest = {doc["_id"]: doc for doc in documents}  # topic order: the later decision wins
        replace_by_id(db[collection], list(latest.values()), _CHUNK)
        report.documents_written += len(latest)

    return run_sink(
        db,
        consumer,
        topic,
        collection,
        lambda record: decision_document(topic, record),
        write,
        dead_letters,
        log,
        chunk_records=chunk_records,
    )
