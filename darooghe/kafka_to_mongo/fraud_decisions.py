"""darooghe.fraud_decisions -> MongoDB `fraud_decisions`: one document per transaction.

The fraud job writes a decision (REVIEW or BLOCK) in the same Kafka transaction as the alerts of
its micro-batch, so the topic holds each decision once. A transaction whose alerts came in two
micro-batches has a decision from each (darooghe.fraud.decisions); the later one (in topic order)
replaces the earlier under `_id = transaction_id`.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Consumer
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.fraud.ruleset import DECISIONS
from darooghe.kafka_io import CHUNK_RECORDS
from darooghe.kafka_to_mongo.dead_letters import DeadLetters
from darooghe.kafka_to_mongo.events import event_document, sink_by_id
from darooghe.kafka_to_mongo.loop import SinkRecordError, SinkReport
from darooghe.records import Record
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
INDEXES = (("decided_at",), ("decision", "event_date"), ("customer_id",))


def _check_decision(where: str, value: dict) -> None:
    if value["decision"] not in DECISIONS:
        raise SinkRecordError(
            f"{where}: decision {value['decision']!r} is not one of {', '.join(DECISIONS)}"
        )


def decision_document(topic: str, record: Record) -> dict:
    return event_document(
        topic,
        record,
        REQUIRED,
        "transaction_id",
        ("event_time", "decided_at"),
        {"event_time": "event", "decided_at": "decided"},
        optional=("risk_level",),
        check=_check_decision,
    )


def sink_fraud_decisions(
    db: Database,
    consumer: Consumer,
    topic: str = FRAUD_DECISIONS.name,
    collection: str = FRAUD_DECISIONS_COLLECTION,
    log: Callable[[str], None] = print,
    dead_letters: DeadLetters | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SinkReport:
    return sink_by_id(
        db,
        consumer,
        topic,
        collection,
        decision_document,
        INDEXES,
        "last",
        log,
        dead_letters,
        chunk_records,
    )
