"""The real-time layer in the asset graph: the two streaming jobs and their topics (alerts, late
transactions, metrics).

The jobs run outside Dagster as background services (`darooghe stream start fraud|metrics`), so
they and the topics they write are `AssetSpec`s; the sensors in sensors/streaming.py report their
progress as observations and restart a dead job. The alerts' MongoDB sink is with the other sinks
in assets/kafka_to_mongo.py.
"""

import dagster as dg

from darooghe import topics
from darooghe_assets import constants as c
from darooghe_assets.assets.topics import topic_spec

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
