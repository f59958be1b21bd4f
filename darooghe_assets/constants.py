"""Names shared across the code location: asset groups, keys of the Kafka topic assets, owners."""

from __future__ import annotations

import dagster as dg

from darooghe import mongo_collections as mc
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
CUSTOMER_PROFILES = dg.AssetKey(mc.CUSTOMER_PROFILES)
COMMISSION_BY_CATEGORY = dg.AssetKey(mc.COMMISSION_BY_CATEGORY)
CUSTOMER_SEGMENTS = dg.AssetKey(mc.CUSTOMER_SEGMENTS)
TRANSACTIONS_COLLECTION = dg.AssetKey(mc.TRANSACTIONS)
FRAUD_ALERTS_COLLECTION = dg.AssetKey(mc.FRAUD_ALERTS)
FRAUD_DECISIONS_COLLECTION = dg.AssetKey(mc.FRAUD_DECISIONS)
ERROR_SUMMARY_COLLECTION = dg.AssetKey(mc.ERROR_SUMMARY)

# Sinks of the real-time layer's live metrics: asset key = collection name.
LIVE_CATEGORY_VOLUME = dg.AssetKey(mc.LIVE_CATEGORY_VOLUME)
LIVE_COMMISSION_BY_TYPE = dg.AssetKey(mc.LIVE_COMMISSION_BY_TYPE)
LIVE_COMMISSION_RATIO = dg.AssetKey(mc.LIVE_COMMISSION_RATIO)
LIVE_TOP_MERCHANTS = dg.AssetKey(mc.LIVE_TOP_MERCHANTS)
# Charts: one asset per chart under ["charts", <chart name>], and the dashboard page.
CHARTS_PREFIX = "charts"
DASHBOARD = dg.AssetKey([CHARTS_PREFIX, "dashboard"])
# The generator's history window written into the transactions topic.
HISTORICAL_BACKFILL = dg.AssetKey("historical_backfill")
# The batch layer: more MongoDB collections (asset key = collection name) and its jobs.
COMMISSION_MODELS = dg.AssetKey(mc.COMMISSION_MODELS)
COMMISSION_RECOMMENDATIONS = dg.AssetKey(mc.COMMISSION_RECOMMENDATIONS)
TEMPORAL_PATTERNS = dg.AssetKey(mc.TEMPORAL_PATTERNS)
HOURLY_PROFILE = dg.AssetKey(mc.HOURLY_PROFILE)
CATEGORY_DAY_PARTS = dg.AssetKey(mc.CATEGORY_DAY_PARTS)
SPENDING_TREND = dg.AssetKey(mc.SPENDING_TREND)
CATEGORY_COMPARISON = dg.AssetKey(mc.CATEGORY_COMPARISON)
OFF_HOURS_TRANSACTIONS = dg.AssetKey(mc.OFF_HOURS_TRANSACTIONS)
OFF_HOURS_MERCHANTS = dg.AssetKey(mc.OFF_HOURS_MERCHANTS)
MERCHANT_SPIKES = dg.AssetKey(mc.MERCHANT_SPIKES)
MERCHANTS = dg.AssetKey(mc.MERCHANTS)  # the merchant reference collection
TRANSACTIONS_DAILY = dg.AssetKey(mc.TRANSACTIONS_DAILY)
TRANSACTIONS_RETENTION = dg.AssetKey("transactions_retention")
SUMMARY_BY_MERCHANT = dg.AssetKey(mc.SUMMARY_BY_MERCHANT)
SUMMARY_BY_SEGMENT = dg.AssetKey(mc.SUMMARY_BY_SEGMENT)
SUMMARY_BY_PERIOD = dg.AssetKey(mc.SUMMARY_BY_PERIOD)
COMMISSION_BY_CATEGORY_OVER_TIME = dg.AssetKey(mc.COMMISSION_BY_CATEGORY_OVER_TIME)
BATCH_JOB = "batch_refresh"  # lake + batch group + storage, daily and when the lake grows
STORAGE_HOURLY_JOB = "storage_hourly"  # lake + detailed transactions + retention, hourly
