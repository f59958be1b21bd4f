"""Schedules of the batch layer (jobs/batch.py), in Tehran time: hourly storage, daily batch."""

import dagster as dg

from darooghe_assets.jobs.batch import batch_refresh_job, storage_hourly_job

TEHRAN = "Asia/Tehran"

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
