"""Health of the streaming fraud job as an asset check on its AssetSpec.

The same evaluation is reported by the watch sensor (sensors/streaming.py) whenever the job's state
changes, and can be run on demand from the UI.
"""

import dagster as dg

from darooghe.streaming.service import job_health
from darooghe_assets import constants as c
from darooghe_assets.resources import SettingsResource

CHECK_NAME = "stream_job_healthy"
#: Kafka records waiting for the job beyond which the check warns (about 10 min at peak rate)
MAX_OFFSETS_BEHIND = 50_000
#: how far the watermark may trail the wall clock on a live stream before the check warns
MAX_WATERMARK_DELAY_S = 600


def health_metadata(health: dict) -> dict:
    """Flat, JSON-friendly figures of a job_health() result (for observations and checks)."""
    queries = health.get("queries") or {}
    progress = [q.get("last_progress") or {} for q in queries.values()]
    first = progress[0] if len(progress) == 1 else {}
    meta = {
        "status": health["status"],
        "alive": health["alive"],
        "pid": health["pid"],
        "heartbeat_age_s": health["heartbeat_age_s"],
        "input_rows_per_second": sum(p.get("input_rows_per_second") or 0 for p in progress),
        "processed_rows_per_second": sum(p.get("processed_rows_per_second") or 0 for p in progress),
        "batch_duration_ms": max((p.get("batch_duration_ms") or 0 for p in progress), default=None),
        "state_rows": sum(p.get("state_rows") or 0 for p in progress),
        "watermark": first.get("watermark"),
        "watermark_delay_s": max((p.get("watermark_delay_s") or 0 for p in progress), default=None),
        "offsets_behind_latest": max(
            (p.get("offsets_behind_latest") or 0 for p in progress), default=None
        ),
        "last_batch_id": first.get("batch_id"),
    }
    for name in ("alerts", "late_rows", "duplicate_rows", "profiles_customers"):
        if name in (health.get("counters") or {}):
            meta[name] = health["counters"][name]
    return {k: v for k, v in meta.items() if v is not None}


def evaluate_health(health: dict, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    meta = health_metadata(health)
    status = health["status"]
    if status != "running":  # down on its own is an error; stopped or starting, a warning
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR
            if status in ("dead", "stalled", "failed")
            else dg.AssetCheckSeverity.WARN,
            metadata=meta,
            description=f"{health['job']} is {status}",
        )
    lagging = []
    if meta.get("offsets_behind_latest", 0) > MAX_OFFSETS_BEHIND:
        lagging.append(f"{meta['offsets_behind_latest']} records behind the topic end")
    if (
        meta.get("watermark_delay_s", 0) > MAX_WATERMARK_DELAY_S
        and meta.get("offsets_behind_latest", 0) > 0
    ):
        lagging.append(f"watermark {meta['watermark_delay_s']:.0f} s behind the wall clock")
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_NAME,
        passed=not lagging,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=meta,
        description="; ".join(lagging) or f"{health['job']} running",
    )


@dg.asset_check(
    asset=c.FRAUD_DETECTION_JOB,
    name=CHECK_NAME,
    description="The fraud job is alive, reporting progress and keeping up with its topic.",
)
def fraud_detection_healthy(settings: SettingsResource) -> dg.AssetCheckResult:
    return evaluate_health(job_health(settings.get(), "fraud"), c.FRAUD_DETECTION_JOB)


@dg.asset_check(
    asset=c.LIVE_METRICS_JOB,
    name=CHECK_NAME,
    description="The live metrics job is alive, reporting progress and keeping up.",
)
def live_metrics_healthy(settings: SettingsResource) -> dg.AssetCheckResult:
    return evaluate_health(job_health(settings.get(), "metrics"), c.LIVE_METRICS_JOB)
