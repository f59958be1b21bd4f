"""Automation of the batch layer: the jobs and schedules exist, and the lake-growth sensor asks for a
batch refresh exactly when the lake has grown by GROWTH_FRACTION since the last one."""

import dagster as dg

from darooghe_assets import constants as c
from darooghe_assets.definitions import defs
from darooghe_assets.sensors.batch import GROWTH_FRACTION, growth_step, lake_growth


def test_jobs_and_schedules_are_defined():
    assert (
        defs.resolve_job_def(c.BATCH_JOB) is not None
        and defs.resolve_job_def(c.STORAGE_HOURLY_JOB) is not None
    )
    schedules = {s.name: s for s in defs.schedules}
    assert schedules["batch_daily"].cron_schedule == "0 1 * * *"
    assert schedules["storage_hourly"].execution_timezone == "Asia/Tehran"
    job = defs.resolve_job_def(c.STORAGE_HOURLY_JOB)
    assert set(job.asset_layer.selected_asset_keys) == {
        c.TRANSACTIONS_LAKE,
        c.TRANSACTIONS_COLLECTION,
        c.TRANSACTIONS_RETENTION,
    }


def test_growth_step():
    assert GROWTH_FRACTION == 0.05
    state, due = growth_step({}, None, 100, 100)
    assert due  # the first data of an empty lake
    state, due = growth_step(state, c.BATCH_JOB, 100, 1000)
    assert (state, due) == ({"base": 1000, "pending": 0}, False)
    state, due = growth_step(state, c.STORAGE_HOURLY_JOB, 30, 1030)
    assert (state["pending"], due) == (30, False)
    state, due = growth_step(state, c.STORAGE_HOURLY_JOB, 20, 1050)  # 50 = 5% of 1000
    assert (state["pending"], due) == (0, True)
    state, due = growth_step(state, c.STORAGE_HOURLY_JOB, 0, 1050)
    assert due is False


def _lake_event(instance, rows_added: int, lake_rows: int) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=c.TRANSACTIONS_LAKE,
            metadata={"rows_added": rows_added, "lake_rows": lake_rows},
        )
    )


def test_lake_growth_sensor():
    with dg.instance_for_test() as instance:
        _lake_event(instance, 1000, 1000)
        context = dg.build_sensor_context(instance=instance)
        result = lake_growth(context)
        assert [r.run_key for r in result] and len(result) == 1
        cursor = context.cursor
        # nothing new: skip, the cursor keeps its place
        again = lake_growth(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(again, dg.SkipReason)
        # growth below 5% of the base (the base is 0 until a batch refresh ran: any growth counts)
        _lake_event(instance, 10, 1010)
        third = lake_growth(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert len(third) == 1
