"""The jobs of the batch layer: what the lake, analytics and storage refreshes materialise.

- `storage_hourly`: the lake takes what is new in Kafka, the detailed `transactions` collection
  loads it and drops what is over 24 hours old (retention). Run hourly (schedules.py).
- `batch_refresh`: the lake, every batch analytics collection, the daily fact and the MongoDB
  summaries. Run daily (schedules.py) and when the lake has grown (sensor `lake_growth`,
  sensors/batch.py).

Both jobs run in one process (in_process_executor), so every step shares one Spark session
instead of starting a JVM per step.
"""

import dagster as dg

from darooghe_assets import constants as c

BATCH_ASSETS = (
    c.TRANSACTIONS_LAKE,
    c.COMMISSION_BY_CATEGORY,
    c.COMMISSION_MODELS,
    c.COMMISSION_RECOMMENDATIONS,
    c.TEMPORAL_PATTERNS,
    c.HOURLY_PROFILE,
    c.CATEGORY_DAY_PARTS,
    c.SPENDING_TREND,
    c.CUSTOMER_PROFILES,
    c.CUSTOMER_SEGMENTS,
    c.CATEGORY_COMPARISON,
    c.MERCHANTS,
    c.OFF_HOURS_TRANSACTIONS,
    c.OFF_HOURS_MERCHANTS,
    c.MERCHANT_SPIKES,
    c.TRANSACTIONS_COLLECTION,
    c.TRANSACTIONS_DAILY,
    c.SUMMARY_BY_MERCHANT,
    c.SUMMARY_BY_SEGMENT,
    c.SUMMARY_BY_PERIOD,
    c.COMMISSION_BY_CATEGORY_OVER_TIME,
)
HOURLY_ASSETS = (c.TRANSACTIONS_LAKE, c.TRANSACTIONS_COLLECTION, c.TRANSACTIONS_RETENTION)

batch_refresh_job = dg.define_asset_job(
    c.BATCH_JOB,
    selection=dg.AssetSelection.assets(*BATCH_ASSETS),
    executor_def=dg.in_process_executor,
    description="The lake, the batch analytics, the detailed transactions, the daily fact and the MongoDB summaries.",
)

storage_hourly_job = dg.define_asset_job(
    c.STORAGE_HOURLY_JOB,
    selection=dg.AssetSelection.assets(*HOURLY_ASSETS),
    executor_def=dg.in_process_executor,
    description="New transactions into the lake and the detailed collection; 24-hour retention.",
)
