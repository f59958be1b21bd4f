"""The Dagster Definitions of Darooghe: every asset, check, job, schedule and sensor, by name.

Each kind lives in the package or module named for it (assets/, checks/, jobs/, sensors/,
schedules.py); a new definition is registered by adding it to the lists below, in lineage order.
"""

from __future__ import annotations

import dagster as dg

from darooghe_assets.assets.batch import (
    category_comparison,
    commission_by_category,
    commission_models,
    customer_profiles,
    customer_segments,
    merchant_spikes,
    off_hours,
    temporal_patterns,
)
from darooghe_assets.assets.charts import chart_assets, dashboard
from darooghe_assets.assets.fraud_rules import (
    fraud_decisions_topic,
    fraud_rule_set,
    fraud_rules_topic,
)
from darooghe_assets.assets.generator import historical_backfill
from darooghe_assets.assets.kafka_to_mongo import (
    error_summary,
    fraud_alerts,
    fraud_decisions,
    live_metric_sinks,
)
from darooghe_assets.assets.lake import transactions_lake
from darooghe_assets.assets.merchants import merchants
from darooghe_assets.assets.storage import (
    mongo_summaries,
    transactions,
    transactions_daily,
    transactions_retention,
)
from darooghe_assets.assets.streaming import (
    fraud_alerts_topic,
    fraud_detection_job,
    late_transactions_topic,
    live_metrics_job,
    metrics_topics,
)
from darooghe_assets.assets.topics import live_generator, merchants_topic, transactions_topic
from darooghe_assets.assets.validation import error_logs_topic, valid_transactions_topic, validator
from darooghe_assets.checks.batch import (
    freshness_checks,
    key_checks,
    lake_checks,
    matches_lake,
    range_checks,
)
from darooghe_assets.checks.streaming import fraud_detection_healthy, live_metrics_healthy
from darooghe_assets.checks.validation import error_rates_near_expected
from darooghe_assets.jobs.batch import batch_refresh_job, storage_hourly_job
from darooghe_assets.jobs.streaming import restart_stream_job
from darooghe_assets.jobs.validation import restart_validator_job
from darooghe_assets.resources import build_resources
from darooghe_assets.schedules import batch_daily_schedule, storage_hourly_schedule
from darooghe_assets.sensors.batch import lake_growth
from darooghe_assets.sensors.charts import charts_automation_sensor
from darooghe_assets.sensors.kafka_to_mongo import (
    error_logs_sink_sensor,
    fraud_alerts_sink_sensor,
    fraud_decisions_sink_sensor,
    live_metrics_sink_sensor,
)
from darooghe_assets.sensors.streaming import fraud_detection_watch, live_metrics_watch
from darooghe_assets.sensors.validation import validator_watch

ASSETS = [
    # ingest: the generator, the raw topic, the validator and its output topics
    live_generator,
    historical_backfill,
    transactions_topic,
    merchants_topic,
    validator,
    valid_transactions_topic,
    error_logs_topic,
    # streaming: the two Spark jobs (observed, not materialised) and their topics
    fraud_detection_job,
    live_metrics_job,
    fraud_alerts_topic,
    late_transactions_topic,
    *metrics_topics,
    # the fraud rules as data (`darooghe rules set`) and the decisions written with the alerts
    fraud_rules_topic,
    fraud_rule_set,
    fraud_decisions_topic,
    # lake and batch analytics
    transactions_lake,
    merchants,
    commission_by_category,
    commission_models,
    temporal_patterns,
    customer_profiles,
    customer_segments,
    category_comparison,
    off_hours,
    merchant_spikes,
    # storage: the 24-hour detailed store, its retention, the daily fact and the summaries
    transactions,
    transactions_retention,
    transactions_daily,
    mongo_summaries,
    # sinks: Kafka -> MongoDB
    fraud_alerts,
    fraud_decisions,
    *live_metric_sinks,
    error_summary,
    # charts and the dashboard
    *chart_assets,
    dashboard,
]

ASSET_CHECKS = [
    *key_checks,
    *range_checks,
    matches_lake,
    lake_checks,
    *freshness_checks,
    fraud_detection_healthy,
    live_metrics_healthy,
    error_rates_near_expected,
]

JOBS = [batch_refresh_job, storage_hourly_job, restart_stream_job, restart_validator_job]

SCHEDULES = [batch_daily_schedule, storage_hourly_schedule]

SENSORS = [
    validator_watch,
    fraud_detection_watch,
    live_metrics_watch,
    fraud_alerts_sink_sensor,
    fraud_decisions_sink_sensor,
    live_metrics_sink_sensor,
    error_logs_sink_sensor,
    lake_growth,
    charts_automation_sensor,
]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=build_resources(),
)
