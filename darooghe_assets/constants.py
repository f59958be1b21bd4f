"""Names shared across the code location: asset groups, keys of the Kafka topic assets, owners."""

from __future__ import annotations

import dagster as dg

from darooghe import topics

OWNER = "team:darooghe"

# Asset groups, in lineage order.
GROUP_INGEST = "ingest"  # generator, raw and validated topics
GROUP_STREAMING = "streaming"  # streaming jobs and their topics
GROUP_LAKE = "lake"
GROUP_BATCH = "batch"  # PySpark analytics into MongoDB
GROUP_STORAGE = "storage"  # detailed transactions, retention, Mongo aggregation summaries
GROUP_SINKS = "sinks"  # Kafka -> MongoDB sinks of the real-time layer
GROUP_CHARTS = "charts"


def topic_key(topic: topics.Topic) -> dg.AssetKey:
    """Asset key of a Kafka topic: ["kafka", "darooghe_transactions"] for darooghe.transactions."""
    return dg.AssetKey(["kafka", topic.name.replace(".", "_")])


TRANSACTIONS_TOPIC = topic_key(topics.TRANSACTIONS)
VALID_TRANSACTIONS_TOPIC = topic_key(topics.VALID_TRANSACTIONS)
ERROR_LOGS_TOPIC = topic_key(topics.ERROR_LOGS)
FRAUD_ALERTS_TOPIC = topic_key(topics.FRAUD_ALERTS)
LATE_TRANSACTIONS_TOPIC = topic_key(topics.LATE_TRANSACTIONS)  # the fraud job's late arrivals
MERCHANTS_TOPIC = topic_key(topics.MERCHANTS)  # the generator's merchant register
FRAUD_RULES_TOPIC = topic_key(topics.FRAUD_RULES)  # versioned rule sets (`darooghe rules set`)
FRAUD_DECISIONS_TOPIC = topic_key(topics.FRAUD_DECISIONS)  # REVIEW/BLOCK per transaction
VALIDATOR = dg.AssetKey(["validator"])  # the validator service, between the raw and validated topics
METRICS_TOPIC_KEYS = {t.name: topic_key(t) for t in topics.METRICS_TOPICS}

# Long-running streaming jobs (AssetSpecs, observed by sensors).
FRAUD_DETECTION_JOB = dg.AssetKey(["streaming", "fraud_detection"])
LIVE_METRICS_JOB = dg.AssetKey(["streaming", "live_metrics"])

# MongoDB collections and the lake: asset key = collection name (the CLI selects them by name).
TRANSACTIONS_LAKE = dg.AssetKey("transactions_lake")
CUSTOMER_PROFILES = dg.AssetKey("customer_profiles")
COMMISSION_BY_CATEGORY = dg.AssetKey("commission_by_category")
CUSTOMER_SEGMENTS = dg.AssetKey("customer_segments")
TRANSACTIONS_COLLECTION = dg.AssetKey("transactions")
FRAUD_ALERTS_COLLECTION = dg.AssetKey("fraud_alerts")
FRAUD_DECISIONS_COLLECTION = dg.AssetKey("fraud_decisions")
ERROR_SUMMARY_COLLECTION = dg.AssetKey("error_summary")

# Sinks of the real-time layer's live metrics (issue 7): asset key = collection name.
LIVE_CATEGORY_VOLUME = dg.AssetKey("live_category_volume")
LIVE_COMMISSION_BY_TYPE = dg.AssetKey("live_commission_by_type")
LIVE_COMMISSION_RATIO = dg.AssetKey("live_commission_ratio")
LIVE_TOP_MERCHANTS = dg.AssetKey("live_top_merchants")
# Charts (issue 7): one asset per chart under ["charts", <chart name>], and the dashboard page.
CHARTS_PREFIX = "charts"
DASHBOARD = dg.AssetKey([CHARTS_PREFIX, "dashboard"])
# The generator's history window written into the transactions topic (issue 3).
HISTORICAL_BACKFILL = dg.AssetKey("historical_backfill")
# The batch layer (issue 6): more MongoDB collections (asset key = collection name) and its jobs.
COMMISSION_MODELS = dg.AssetKey("commission_models")
COMMISSION_RECOMMENDATIONS = dg.AssetKey("commission_recommendations")
TEMPORAL_PATTERNS = dg.AssetKey("temporal_patterns")
HOURLY_PROFILE = dg.AssetKey("hourly_profile")
CATEGORY_DAY_PARTS = dg.AssetKey("category_day_parts")
SPENDING_TREND = dg.AssetKey("spending_trend")
CATEGORY_COMPARISON = dg.AssetKey("category_comparison")
OFF_HOURS_TRANSACTIONS = dg.AssetKey("off_hours_transactions")
OFF_HOURS_MERCHANTS = dg.AssetKey("off_hours_merchants")
MERCHANT_SPIKES = dg.AssetKey("merchant_spikes")
MERCHANTS = dg.AssetKey("merchants")  # the merchant reference collection
TRANSACTIONS_DAILY = dg.AssetKey("transactions_daily")
TRANSACTIONS_RETENTION = dg.AssetKey("transactions_retention")
SUMMARY_BY_MERCHANT = dg.AssetKey("summary_by_merchant")
SUMMARY_BY_SEGMENT = dg.AssetKey("summary_by_segment")
SUMMARY_BY_PERIOD = dg.AssetKey("summary_by_period")
COMMISSION_BY_CATEGORY_OVER_TIME = dg.AssetKey("commission_by_category_over_time")
BATCH_JOB = "batch_refresh"  # lake + batch group + storage, daily and when the lake grows
STORAGE_HOURLY_JOB = "storage_hourly"  # lake + detailed transactions + retention, hourly
