"""darooghe.fraud_alerts -> MongoDB `fraud_alerts`: one document per alert_id, first detection wins.

The fraud job writes its alerts in Kafka transactions (exactly once for read_committed consumers),
but the sink does not rely on it: a record read twice (a crash between a chunk's writes and its
offsets, or a producer outside the job) is written with `_id = alert_id` and only inserted when
new, so every redelivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Consumer
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.fraud.rules import RULES
from darooghe.kafka_io import CHUNK_RECORDS
from darooghe.kafka_to_mongo.dead_letters import DeadLetters
from darooghe.kafka_to_mongo.events import event_document, sink_by_id
from darooghe.kafka_to_mongo.loop import SinkRecordError, SinkReport
from darooghe.records import Record
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
INDEXES = (("event_time",), ("rule", "event_date"), ("customer_id",))


def _check_rule(where: str, value: dict) -> None:
    if not isinstance(value["rule"], str) or value["rule"] not in RULES:
        raise SinkRecordError(f"{where}: rule {value['rule']!r} is not one of {', '.join(RULES)}")


def alert_document(topic: str, record: Record) -> dict:
    return event_document(
        topic,
        record,
        REQUIRED,
        "alert_id",
        ("event_time", "detected_at"),
        {"event_time": "event"},
        check=_check_rule,
    )


def sink_fraud_alerts(
    db: Database,
    consumer: Consumer,
    topic: str = FRAUD_ALERTS.name,
    collection: str = FRAUD_ALERTS_COLLECTION,
    log: Callable[[str], None] = print,
    dead_letters: DeadLetters | None = None,
    chunk_records: int = CHUNK_RECORDS,
) -> SinkReport:
    return sink_by_id(
        db,
        consumer,
        topic,
        collection,
        alert_document,
        INDEXES,
        "first",
        log,
        dead_letters,
        chunk_records,
    )
