"""Sensors of the real-time layer.

- `fraud_detection_watch` / `live_metrics_watch`: read the job's PID file and progress file
  (written by its StreamingQueryListener) and report, as AssetObservations on the job's AssetSpec,
  liveness, last progress, input and processing rates, batch duration, state rows and watermark
  delay; report the health check; and request a run of `restart_stream_job` (jobs/streaming.py)
  when the job is dead (enabled by `darooghe stream start`, but not running). A job stopped on
  purpose stays stopped.
"""

import json
import time

import dagster as dg

from darooghe.streaming.service import JOBS, job_health, restart_reason
from darooghe_assets import constants as c
from darooghe_assets.checks.streaming import evaluate_health, health_metadata
from darooghe_assets.jobs.streaming import restart_stream_job
from darooghe_assets.resources import SettingsResource

WATCH_INTERVAL_S = 30
#: observe at least this often even when nothing changed (a heartbeat in the asset's history)
OBSERVE_EVERY_S = 300


def stream_watch_sensor(name: str, job: str, asset_key: dg.AssetKey) -> dg.SensorDefinition:
    """The watch sensor of streaming `job` ("fraud" or "metrics"), observing `asset_key`."""

    @dg.sensor(
        name=name,
        job=restart_stream_job,
        minimum_interval_seconds=WATCH_INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {JOBS[job]}: observations of its progress, its health check, and a "
        f"restart when it died or hung.",
    )
    def _watch(context: dg.SensorEvaluationContext, settings: SettingsResource):
        health = job_health(settings.get(), job)
        meta = health_metadata(health)
        last = json.loads(context.cursor) if context.cursor else {}
        state = {"status": health["status"], "batch": meta.get("last_batch_id")}
        now = time.time()
        changed = state != {k: last.get(k) for k in state}
        due = changed or now - last.get("observed_at", 0) >= OBSERVE_EVERY_S
        events = []
        if due:
            events.append(dg.AssetObservation(asset_key=asset_key, metadata=meta))
            result = evaluate_health(health, asset_key)
            events.append(
                dg.AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=result.check_name,
                    passed=result.passed,
                    severity=result.severity,
                    metadata=result.metadata,
                    description=result.description,
                )
            )
        run_requests = []
        reason = restart_reason(health)
        if reason is not None:
            # One request per death (or hang) and 5 minutes: the key names the last pid seen
            # alive, so a restart that did not take is asked for again later, not every evaluation.
            pid = health["pid"] or last.get("pid") or "none"
            run_requests.append(
                dg.RunRequest(
                    run_key=f"restart-{JOBS[job]}-{reason}-{pid}-{int(now // 300)}",
                    run_config={"ops": {"restart_stream_op": {"config": {"job": job}}}},
                    tags={"darooghe/stream-job": JOBS[job]},
                )
            )
            why = (
                "enabled, no process"
                if reason == "dead"
                else f"pid {pid}, no heartbeat for {health['heartbeat_age_s']:.0f} s"
            )
            context.log.warning(f"{JOBS[job]} is {reason} ({why}): requesting a restart")
        cursor = {
            **state,
            "pid": health["pid"] or last.get("pid"),
            "observed_at": now if due else last.get("observed_at", 0),
        }
        return dg.SensorResult(
            run_requests=run_requests, asset_events=events, cursor=json.dumps(cursor)
        )

    return _watch


fraud_detection_watch = stream_watch_sensor("fraud_detection_watch", "fraud", c.FRAUD_DETECTION_JOB)
live_metrics_watch = stream_watch_sensor("live_metrics_watch", "metrics", c.LIVE_METRICS_JOB)
