"""The real-time layer in the asset graph: the two streaming jobs, their topics (alerts, late
transactions, metrics), the alerts sink.

The jobs run outside Dagster as background services (`darooghe stream start fraud|metrics`), so
they and the topics they write are `AssetSpec`s; the sensors in sensors/streaming.py report their
progress as observations and restart a dead job. `fraud_alerts` (MongoDB) is a real asset,
materialised by the offsets sensor when the alerts topic moves.
"""

import dagster as dg

from darooghe import topics
from darooghe.streaming.alerts_sink import FRAUD_ALERTS_COLLECTION, sink_fraud_alerts
from darooghe_assets import constants as c
from darooghe_assets.assets.topics import topic_spec
from darooghe_assets.resources import KafkaResource, MongoResource
from darooghe_assets.sink_results import (
    clients,
    dead_letter_check,
    dead_letter_check_spec,
    sink_metadata,
)

fraud_detection_job = dg.AssetSpec(
    c.FRAUD_DETECTION_JOB,
    description=(
        "Spark Structured Streaming fraud detection (spark_apps/fraud_detection.py, background "
        "service stream-fraud): per-customer state with transformWithState in event time, the three "
        "three fraud rules exactly, averages from customer_profiles refreshed without restart."
    ),
    deps=[c.VALID_TRANSACTIONS_TOPIC, c.CUSTOMER_PROFILES],
    kinds={"spark", "python"},
    group_name=c.GROUP_STREAMING,
    owners=[c.OWNER],
    metadata={"process": "stream-fraud", "start": "darooghe stream start fraud"},
)

live_metrics_job = dg.AssetSpec(
    c.LIVE_METRICS_JOB,
    description=(
        "Spark Structured Streaming live commission metrics (spark_apps/live_metrics.py, background "
        "service stream-metrics): windowed aggregates in event time with watermarks."
    ),
    deps=[c.VALID_TRANSACTIONS_TOPIC],
    kinds={"spark", "python"},
    group_name=c.GROUP_STREAMING,
    owners=[c.OWNER],
    metadata={"process": "stream-metrics", "start": "darooghe stream start metrics"},
)

fraud_alerts_topic = topic_spec(
    c.FRAUD_ALERTS_TOPIC,
    topics.FRAUD_ALERTS,
    [c.FRAUD_DETECTION_JOB],
    c.GROUP_STREAMING,
    f"{topics.FRAUD_ALERTS.description}; key customer_id, value the alert JSON (dedupe on alert_id).",
)

late_transactions_topic = topic_spec(
    c.LATE_TRANSACTIONS_TOPIC,
    topics.LATE_TRANSACTIONS,
    [c.FRAUD_DETECTION_JOB],
    c.GROUP_STREAMING,
    f"{topics.LATE_TRANSACTIONS.description}. The fraud job's dead letters: the windowed rules "
    "no longer judge them, AMOUNT_ANOMALY still does (its alerts go to the alerts topic).",
)

metrics_topics = [
    topic_spec(
        c.METRICS_TOPIC_KEYS[t.name],
        t,
        [c.LIVE_METRICS_JOB],
        c.GROUP_STREAMING,
        f"{t.description}; values carry a deterministic metric_id (upsert).",
    )
    for t in topics.METRICS_TOPICS
]

_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def fraud_alerts_sink_asset(
    topic: str = topics.FRAUD_ALERTS.name,
    key: dg.AssetKey = c.FRAUD_ALERTS_COLLECTION,
    dep: dg.AssetKey = c.FRAUD_ALERTS_TOPIC,
    collection: str = FRAUD_ALERTS_COLLECTION,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The MongoDB sink of an alerts topic (tests sink a fresh topic into a collection of their own)."""

    @dg.asset(
        key=key,
        deps=[dep],
        description=(
            f"Fraud alerts of {topic} since the last run, upserted by alert_id (first detection wins), "
            "with event_time/detected_at as datetimes and event_date/event_hour for charts."
        ),
        group_name=c.GROUP_SINKS,
        kinds={"kafka", "mongodb"},
        owners=[c.OWNER],
        retry_policy=_RETRY,
        metadata={"topic": topic, "collection": collection},
        check_specs=[dead_letter_check_spec(key, topic)],
    )
    def _sink(context: dg.AssetExecutionContext, kafka: KafkaResource, mongo: MongoResource):
        consumer, dead_letters = clients(kafka, collection, dead_letter_topic)
        try:
            with mongo.get_db() as db:
                report = sink_fraud_alerts(
                    db, consumer, topic, collection, context.log.info, dead_letters
                )
                by_rule = {
                    row["_id"]: row["n"]
                    for row in db[collection].aggregate(
                        [{"$group": {"_id": "$rule", "n": {"$sum": 1}}}]
                    )
                }
        finally:
            consumer.close()
        metadata = sink_metadata(report)
        metadata["alerts_inserted"] = report.documents_written
        metadata["alerts_by_rule"] = dg.MetadataValue.json(by_rule)
        return dg.MaterializeResult(
            metadata=metadata, check_results=[dead_letter_check(report, dead_letter_topic)]
        )

    return _sink


fraud_alerts = fraud_alerts_sink_asset()
