"""darooghe.fraud_alerts -> MongoDB `fraud_alerts`: one document per alert_id, first detection wins.

The fraud job writes its alerts in Kafka transactions (exactly once for read_committed consumers),
but the sink does not rely on it: a record read twice (a crash between a chunk's writes and its
offsets, or a producer outside the job) is written with `_id = alert_id` and only inserted when
new, so every redelivery changes nothing.
"""

from __future__ import annotations

from darooghe import mongo_collections as mc
from darooghe.fraud.rules import RULES
from darooghe.kafka_to_mongo.events import EventSink
from darooghe.kafka_to_mongo.loop import SinkRecordError
from darooghe.topics import FRAUD_ALERTS

FRAUD_ALERTS_COLLECTION = mc.FRAUD_ALERTS


def _check_rule(where: str, value: dict) -> None:
    if not isinstance(value["rule"], str) or value["rule"] not in RULES:
        raise SinkRecordError(f"{where}: rule {value['rule']!r} is not one of {', '.join(RULES)}")


ALERT_SINK = EventSink(
    topic=FRAUD_ALERTS.name,
    collection=FRAUD_ALERTS_COLLECTION,
    required=(
        "alert_id",
        "rule",
        "transaction_id",
        "customer_id",
        "event_time",
        "detected_at",
        "evidence",
        "severity",
    ),
    id_field="alert_id",
    times=("event_time", "detected_at"),
    dated={"event_time": "event"},
    keep="first",
    indexes=(("event_time",), ("rule", "event_date"), ("customer_id",)),
    check=_check_rule,
)
alert_document = ALERT_SINK.document
sink_fraud_alerts = ALERT_SINK.sink
