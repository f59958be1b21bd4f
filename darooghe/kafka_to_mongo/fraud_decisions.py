"""darooghe.fraud_decisions -> MongoDB `fraud_decisions`: one document per transaction.

The fraud job writes a decision (REVIEW or BLOCK) in the same Kafka transaction as the alerts of
its micro-batch, so the topic holds each decision once. A transaction whose alerts came in two
micro-batches has a decision from each (darooghe.fraud.decisions); the later one (in topic order)
replaces the earlier under `_id = transaction_id`.
"""

from __future__ import annotations

from darooghe import mongo_collections as mc
from darooghe.fraud.ruleset import DECISIONS
from darooghe.kafka_to_mongo.events import EventSink
from darooghe.kafka_to_mongo.loop import SinkRecordError
from darooghe.topics import FRAUD_DECISIONS

FRAUD_DECISIONS_COLLECTION = mc.FRAUD_DECISIONS


def _check_decision(where: str, value: dict) -> None:
    if value["decision"] not in DECISIONS:
        raise SinkRecordError(
            f"{where}: decision {value['decision']!r} is not one of {', '.join(DECISIONS)}"
        )


DECISION_SINK = EventSink(
    topic=FRAUD_DECISIONS.name,
    collection=FRAUD_DECISIONS_COLLECTION,
    required=(
        "transaction_id",
        "customer_id",
        "event_time",
        "score",
        "decision",
        "rules",
        "rule_set_version",
        "decided_at",
    ),
    id_field="transaction_id",
    times=("event_time", "decided_at"),
    dated={"event_time": "event", "decided_at": "decided"},
    keep="last",
    indexes=(("decided_at",), ("decision", "event_date"), ("customer_id",)),
    optional=("risk_level",),
    check=_check_decision,
)
decision_document = DECISION_SINK.document
sink_fraud_decisions = DECISION_SINK.sink
