"""`lake_growth`: a batch refresh whenever the lake has grown by GROWTH_FRACTION since the last one.

Fed by the lake's `rows_added` and `lake_rows` metadata of the hourly runs, so analytics follow a
burst of traffic before the daily schedule comes round.
"""

import json

import dagster as dg

from darooghe_assets import constants as c
from darooghe_assets.jobs.batch import batch_refresh_job

GROWTH_FRACTION = 0.05


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
