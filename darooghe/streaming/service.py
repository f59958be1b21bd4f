"""The streaming jobs as background services: start, stop, health, and restart when they die.

`start_job` runs `darooghe stream <job> ARGS` detached (ManagedProcess `stream-fraud` /
`stream-metrics`) and records the wish that it runs, with its arguments, in
`$DAROOGHE_HOME/run/<name>.enabled`. `stop_job` stops it and removes that file. So "dead" means
enabled but not running — a crash, a kill, a reboot — which is what the Dagster sensor restarts,
with the same arguments (less `--fresh`, which applies to the start it was given to only); a job
someone stopped on purpose stays stopped. A job whose process is up but that has not reported for
HUNG_AFTER_S is hung (a wait with no time-out, a wedged JVM) and is restarted the same way, after
it is stopped: a checkpointed query loses nothing by being killed.
"""

from __future__ import annotations

import json
import sys
import time

from darooghe.config import Settings, load_settings
from darooghe.services.process import ManagedProcess
from darooghe.streaming.options import without_fresh
from darooghe.streaming.progress import STALE_AFTER_S, progress_path, read_progress

JOBS = {"fraud": "stream-fraud", "metrics": "stream-metrics"}
#: Time a freshly started job gets to build its Spark session and report a first heartbeat.
STARTUP_GRACE_S = 240.0
#: A running job reports a heartbeat at least every trigger (idle included); one silent this long is
#: hung, not slow: every client call of a micro-batch is bounded well below it (MongoDB waits 30 s,
#: Kafka transactions 60 s), and a replayed backlog's longest micro-batch measured here took ~90 s.
HUNG_AFTER_S = 600.0


def _enabled_file(settings: Settings, name: str):
    return settings.run_dir / f"{name}.enabled"


def enabled_args(settings: Settings, job: str) -> list[str] | None:
    """The arguments the job was started with, or None when it is not meant to run."""
    try:
        args = list(json.loads(_enabled_file(settings, JOBS[job]).read_text())["args"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    return without_fresh(args)  # also when an older version saved it


def start_job(job: str, job_args: list[str], settings: Settings | None = None) -> int | None:
    """Start `job` in the background unless it runs; returns its PID (None if it already ran)."""
    settings = settings or load_settings()
    name = JOBS[job]
    proc = ManagedProcess(name, settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    _enabled_file(settings, name).write_text(
        json.dumps({"args": without_fresh(list(job_args)), "since": time.time()})
    )
    if proc.pid() is not None:
        return None
    return proc.start([sys.executable, "-m", "darooghe.cli", "stream", job, *job_args])


def stop_job(job: str, settings: Settings | None = None, timeout: float = 90.0) -> bool:
    settings = settings or load_settings()
    name = JOBS[job]
    _enabled_file(settings, name).unlink(missing_ok=True)
    return ManagedProcess(name, settings).stop(timeout=timeout)


def restart_reason(health: dict) -> str | None:
    """Why a job's health calls for a restart ("dead", "hung"), or None."""
    if health["status"] == "dead":
        return "dead"
    age = health.get("heartbeat_age_s")
    if health["status"] == "stalled" and health["enabled"] and age is not None and age >= HUNG_AFTER_S:
        return "hung"
    return None


def restart_if_unhealthy(job: str, settings: Settings | None = None) -> int | None:
    """Start an enabled job that is dead, or stop and start one that is hung, with its recorded
    arguments; returns the new PID (None when nothing needed doing)."""
    settings = settings or load_settings()
    args = enabled_args(settings, job)
    reason = restart_reason(job_health(settings, job))
    if args is None or reason is None:
        return None
    if reason == "hung":
        ManagedProcess(JOBS[job], settings).stop(timeout=60.0)
    return start_job(job, args, settings)


def job_health(settings: Settings, job: str, now: float | None = None) -> dict:
    """The job's state from its PID file, its enabled marker and its progress file.

    status: "running" (process up, heartbeat fresh), "starting" (process up for less than
    STARTUP_GRACE_S, no heartbeat from it yet), "stalled" (process up, no fresh heartbeat),
    "failed" (process up, a query ended with an error), "dead" (enabled, no process) or
    "stopped" (not enabled, no process).
    """
    import psutil

    now = time.time() if now is None else now
    name = JOBS[job]
    pid = ManagedProcess(name, settings).pid()
    doc = read_progress(progress_path(settings, name)) or {}
    queries = doc.get("queries") or {}
    if pid is None or doc.get("pid") != pid:
        queries = {} if pid is not None else queries  # a previous run's file while a new one starts
    heartbeats = [q.get("heartbeat_at") for q in queries.values() if q.get("heartbeat_at")]
    last = max(heartbeats) if heartbeats else None
    age = None if last is None else round(now - last, 1)
    failed = sorted(n for n, q in queries.items() if q.get("status") == "failed")
    enabled = enabled_args(settings, job) is not None
    if pid is None:
        status = "dead" if enabled else "stopped"
    elif failed:
        status = "failed"
    elif age is not None and age <= STALE_AFTER_S:
        status = "running"
    else:
        try:
            up_for = now - psutil.Process(pid).create_time()
        except psutil.Error:
            up_for = float("inf")
        status = "starting" if age is None and up_for <= STARTUP_GRACE_S else "stalled"
    return {
        "job": name,
        "status": status,
        "alive": status in ("running", "starting"),
        "enabled": enabled,
        "pid": pid,
        "heartbeat_age_s": age,
        "failed_queries": failed,
        "queries": queries,
        "counters": doc.get("counters") or {},
    }
