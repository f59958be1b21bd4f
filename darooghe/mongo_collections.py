"""The project's MongoDB collections: one definition of their names.

The modules that write a collection, the charts and checks that read it and the Dagster asset named
after it (asset key = collection name) all take the name from here, so a rename cannot leave a
reader on the old collection.
"""

from __future__ import annotations

# Storage layer: the detailed transactions, their rollups and the loader's state.
TRANSACTIONS = "transactions"
TRANSACTIONS_HOURLY = "transactions_hourly"
ACTIVITY_HOURLY = "activity_hourly"
BATCH_STATE = "batch_state"
TRANSACTIONS_DAILY = "transactions_daily"
SUMMARY_BY_MERCHANT = "summary_by_merchant"
SUMMARY_BY_SEGMENT = "summary_by_segment"
SUMMARY_BY_PERIOD = "summary_by_period"
COMMISSION_BY_CATEGORY_OVER_TIME = "commission_by_category_over_time"

# Batch layer (PySpark analytics).
CUSTOMER_PROFILES = "customer_profiles"
CUSTOMER_SEGMENTS = "customer_segments"
SEGMENT_SUMMARY = "segment_summary"
COMMISSION_BY_CATEGORY = "commission_by_category"
COMMISSION_MODELS = "commission_models"
COMMISSION_RECOMMENDATIONS = "commission_recommendations"
TEMPORAL_PATTERNS = "temporal_patterns"
HOURLY_PROFILE = "hourly_profile"
CATEGORY_DAY_PARTS = "category_day_parts"
SPENDING_TREND = "spending_trend"
CATEGORY_COMPARISON = "category_comparison"
OFF_HOURS_TRANSACTIONS = "off_hours_transactions"
OFF_HOURS_MERCHANTS = "off_hours_merchants"
MERCHANT_SPIKES = "merchant_spikes"
MERCHANTS = "merchants"

# Real-time layer: what the Kafka -> MongoDB sinks write, and their own bookkeeping.
FRAUD_ALERTS = "fraud_alerts"
FRAUD_DECISIONS = "fraud_decisions"  # REVIEW/BLOCK per transaction (darooghe.kafka_to_mongo.fraud_decisions)
ERROR_SUMMARY = "error_summary"
LIVE_CATEGORY_VOLUME = "live_category_volume"
LIVE_COMMISSION_BY_TYPE = "live_commission_by_type"
LIVE_COMMISSION_RATIO = "live_commission_ratio"
LIVE_TOP_MERCHANTS = "live_top_merchants"
#: consumed offsets of the sinks: _id = "<collection>|<topic>"
SINK_OFFSETS = "sink_offsets"
#: the lease one sink run holds
SINK_LOCKS = "sink_locks"
