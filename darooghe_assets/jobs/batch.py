"""Automation of the batch layer: when the lake, the analytics and the storage are refreshed.

- `storage_hourly` every hour: the lake takes what is new in Kafka, the detailed `transactions`
  collection loads it and drops what is over 24 hours old (retention).
- `batch_refresh` every day at 01:00 Tehran time, and whenever the lake has grown by
  GROWTH_FRACTION since the last batch refresh (sensor `lake_growth`, fed by the lake's
  `rows_added` metadata of the hourly runs): the lake, every batch analytics collection, the daily
  fact and the MongoDB summaries.

Both jobs run in one process (in_process_executor), so every step shares one Spark session
instead of starting a JVM per step.
"""

import json

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
GROWTH_FRACTION = 0.05
TEHRAN = "Asia/Tehran"

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

batch_daily_schedule = dg.ScheduleDefinition(
    name="batch_daily",
    job=batch_refresh_job,
    cron_schedule="0 1 * * *",
    execution_timezone=TEHRAN,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

storage_hourly_schedule = dg.ScheduleDefinition(
    name="storage_hourly",
    job=storage_hourly_job,
    cron_schedule="5 * * * *",
    execution_timezone=TEHRAN,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def growth_step(
    state: dict, job_name: str | None, rows_added: int, lake_rows: int
) -> tuple[dict, bool]:
    """Fold one lake materialisation into the sensor state; True when a batch refresh is due.

    state: {"base": lake rows at the last batch refresh, "pending": rows added since}.
    """
    if job_name == c.BATCH_JOB:
        return {"base": lake_rows, "pending": 0}, False
    pending = state.get("pending", 0) + rows_added
    base = state.get("base", 0)
    due = pending > 0 and pending >= GROWTH_FRACTION * max(base, 1)
    return {"base": base, "pending": 0 if due else pending}, due


def _int(metadata, name: str) -> int:
    value = metadata.get(name)
    return int(value.value) if value is not None else 0


@dg.sensor(
    name="lake_growth",
    job=batch_refresh_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Requests a batch refresh when the lake has grown by {GROWTH_FRACTION:.0%} since the last one.",
)
def lake_growth(context: dg.SensorEvaluationContext):
    cursor = json.loads(context.cursor) if context.cursor else {"after": None, "state": {}}
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=c.TRANSACTIONS_LAKE, after_storage_id=cursor["after"]),
        limit=1000,
        ascending=True,
    ).records
    state, requests = cursor["state"], []
    for record in records:
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        run = context.instance.get_run_by_id(record.run_id) if record.run_id else None
        state, due = growth_step(
            state,
            run.job_name if run else None,
            _int(metadata, "rows_added"),
            _int(metadata, "lake_rows"),
        )
        if due:
            requests.append(dg.RunRequest(run_key=f"lake-growth-{record.storage_id}"))
        cursor["after"] = record.storage_id
    cursor["state"] = state
    context.update_cursor(json.dumps(cursor))
    if not requests:
        return dg.SkipReason(
            f"lake grew by {state.get('pending', 0)} rows since the last batch refresh (base {state.get('base', 0)})"
        )
    return requests[-1:]
