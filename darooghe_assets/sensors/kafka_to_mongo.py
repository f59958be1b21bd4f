"""Sensors that run the Kafka -> MongoDB sink assets (assets/kafka_to_mongo.py) when their topics receive new records.

The cursor holds each watched topic's end offsets ({topic: {partition: high}}); a topic whose end
moved since the last evaluation gets its sink asset materialised. The sinks themselves are
idempotent, so a run requested twice (or a run by hand in between) does no harm.
"""

import hashlib
import json

import dagster as dg

from darooghe import topics
from darooghe.kafka_io import UnknownTopicError, partition_offsets
from darooghe_assets import constants as c
from darooghe_assets.assets.kafka_to_mongo import METRIC_SINK_KEYS
from darooghe_assets.resources import KafkaResource

#: seconds between evaluations: the live metrics arrive every 20 s, a run per minute keeps up
SINK_SENSOR_INTERVAL = 60


def kafka_sink_sensor(
    name: str,
    sink_keys: dict[str, dg.AssetKey],
    minimum_interval_seconds: int = SINK_SENSOR_INTERVAL,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A sensor watching the end offsets of the topics in `sink_keys` (topic -> sink asset key)."""

    @dg.sensor(
        name=name,
        target=dg.AssetSelection.assets(*sink_keys.values()),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Materialises the sinks of {', '.join(sink_keys)} when new records arrive.",
    )
    def _sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource):
        seen: dict[str, dict[str, int]] = json.loads(context.cursor) if context.cursor else {}
        current = dict(seen)
        moved, missing = [], []
        consumer = kafka.consumer()
        try:
            for topic in sink_keys:
                try:
                    ends = {str(p): o.high for p, o in partition_offsets(consumer, topic).items()}
                except UnknownTopicError:
                    missing.append(topic)
                    continue
                if ends != seen.get(topic) and sum(ends.values()) > 0:
                    moved.append(topic)
                current[topic] = ends
        finally:
            consumer.close()
        cursor = json.dumps(current, sort_keys=True)
        if not moved:
            reason = "no new records"
            if missing:
                reason += f"; topics not created yet: {', '.join(missing)}"
            return dg.SensorResult(skip_reason=reason, cursor=cursor)
        offsets = {t: current[t] for t in moved}
        run_key = (
            f"{name}:{hashlib.sha1(json.dumps(offsets, sort_keys=True).encode()).hexdigest()[:16]}"
        )
        context.log.info(f"new records on {', '.join(moved)}: {offsets}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=run_key, asset_selection=[sink_keys[t] for t in moved])
            ],
            cursor=cursor,
        )

    return _sensor


live_metrics_sink_sensor = kafka_sink_sensor("live_metrics_sink_sensor", METRIC_SINK_KEYS)
error_logs_sink_sensor = kafka_sink_sensor(
    "error_logs_sink_sensor", {topics.ERROR_LOGS.name: c.ERROR_SUMMARY_COLLECTION}
)
fraud_alerts_sink_sensor = kafka_sink_sensor(
    "fraud_alerts_sink_sensor", {topics.FRAUD_ALERTS.name: c.FRAUD_ALERTS_COLLECTION}
)
fraud_decisions_sink_sensor = kafka_sink_sensor(
    "fraud_decisions_sink_sensor", {topics.FRAUD_DECISIONS.name: c.FRAUD_DECISIONS_COLLECTION}
)
