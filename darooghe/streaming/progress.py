"""Progress files of the streaming jobs: written by a StreamingQueryListener, read by Dagster.

One JSON file per job under `settings.metrics_dir` (`stream-fraud.progress.json`, ...), replaced
atomically after every micro-batch and on idle heartbeats, holding for each of the job's queries
its status, the last batch (input and processing rates, duration, state rows, watermark and how far
it trails the wall clock, Kafka offsets behind latest) and job counters (alerts, late rows). The
sensor judges liveness from the PID file and from how old the last heartbeat is.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from darooghe.config import Settings

#: A running query reports at least every 10 s when idle (Spark's no-data progress interval).
STALE_AFTER_S = 120.0


def progress_path(settings: Settings, job: str) -> Path:
    return settings.metrics_dir / f"{job}.progress.json"


def _iso_to_epoch_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def summarize_progress(p: dict, now: float | None = None) -> dict:
    """The figures the sensor reports, from a StreamingQueryProgress JSON."""
    now = time.time() if now is None else now
    ops = p.get("stateOperators") or []
    event_time = p.get("eventTime") or {}
    watermark = event_time.get("watermark")
    wm_s = _iso_to_epoch_s(watermark)
    behind = []
    for src in p.get("sources") or []:
        value = (src.get("metrics") or {}).get("maxOffsetsBehindLatest")
        if value is not None:
            behind.append(int(float(value)))
    return {
        "batch_id": p.get("batchId"),
        "batch_timestamp": p.get("timestamp"),
        "num_input_rows": p.get("numInputRows", 0),
        "input_rows_per_second": round(float(p.get("inputRowsPerSecond") or 0.0), 2),
        "processed_rows_per_second": round(float(p.get("processedRowsPerSecond") or 0.0), 2),
        "batch_duration_ms": p.get("batchDuration"),
        "trigger_execution_ms": (p.get("durationMs") or {}).get("triggerExecution"),
        "state_rows": sum(int(op.get("numRowsTotal", 0)) for op in ops),
        "state_memory_bytes": sum(int(op.get("memoryUsedBytes", 0)) for op in ops),
        "rows_dropped_by_watermark": sum(int(op.get("numRowsDroppedByWatermark", 0)) for op in ops),
        "watermark": watermark,
        "max_event_time": event_time.get("max"),
        # How far event time trails the wall clock: the alerting delay the watermark imposes.
        "watermark_delay_s": None if wm_s is None or wm_s <= 0 else round(now - wm_s, 3),
        "offsets_behind_latest": max(behind) if behind else None,
    }


def write_json_atomic(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_progress(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class ProgressRecorder:
    """The job's progress file: per-query entries plus job counters, rewritten on every event."""

    def __init__(self, path: Path, job: str, counters: Callable[[], dict] | None = None) -> None:
        self.path = path
        self.job = job
        self.counters = counters or (dict)
        self._lock = threading.Lock()
        self._doc = {"job": job, "pid": os.getpid(), "started_at": time.time(), "queries": {}}

    def entry(self, query: str) -> dict:
        with self._lock:
            return dict(self._doc["queries"].get(query) or {})

    def update(self, query: str, **fields) -> None:
        with self._lock:
            entry = self._doc["queries"].setdefault(query, {})
            entry.update(fields)
            self._doc["updated_at"] = time.time()
            self._doc["counters"] = self.counters()
            write_json_atomic(self.path, self._doc)


class _ProgressJson:
    """What onQueryProgress reads of its event: `event.progress.json`."""

    def __init__(self, text: str) -> None:
        self.progress = self
        self.json = text


def make_listener(recorders: dict[str, ProgressRecorder]):
    """A StreamingQueryListener feeding `recorders` (query name -> the job's recorder).

    Its progress events reach Python as the progress' JSON alone (one py4j call). PySpark's own
    bridge first rebuilds every field of the progress through py4j (`QueryProgressEvent.fromJObject`:
    594 calls and about 400 ms for a one-operator query, measured on this machine); async-profiler
    at 1,000 events/s found that listener thread using 7 % of a core of the fraud job's JVM, on two
    cores shared with the broker and the validator."""
    from pyspark import SparkContext
    from pyspark.sql.streaming import StreamingQueryListener
    from pyspark.sql.streaming.listener import JStreamingQueryListener

    class JsonProgressBridge(JStreamingQueryListener):
        def onQueryProgress(self, jevent) -> None:
            self.pylistener.onQueryProgress(_ProgressJson(jevent.progress().json()))

    class ProgressFileListener(StreamingQueryListener):
        @property
        def _jlistener(self):
            # what StreamingQueryManager.addListener / removeListener register (PySpark's property
            # with the bridge above)
            if not hasattr(self, "_jlistenerobj"):
                self._jlistenerobj = SparkContext._jvm.PythonStreamingQueryListenerWrapper(
                    JsonProgressBridge(self)
                )
            return self._jlistenerobj

        def _recorder(self, name):
            return recorders.get(name)

        @staticmethod
        def _ended(rec, name, run_id) -> bool:
            # Listener events arrive asynchronously: a progress or idle event delivered after the
            # job recorded its run's end must not mark that run running again.
            entry = rec.entry(name)
            return entry.get("status") in ("stopped", "failed") and entry.get("run_id") == str(run_id)

        def onQueryStarted(self, event):
            rec = self._recorder(event.name)
            if rec:
                rec.update(
                    event.name,
                    status="running",
                    id=str(event.id),
                    run_id=str(event.runId),
                    heartbeat_at=time.time(),
                    exception=None,
                )

        def onQueryProgress(self, event):
            p = json.loads(event.progress.json)
            rec = self._recorder(p.get("name"))
            if rec and not self._ended(rec, p.get("name"), p.get("runId")):
                now = time.time()
                summary = summarize_progress(p, now)
                total = (
                    rec.entry(p.get("name")).get("input_rows_total", 0) + summary["num_input_rows"]
                )
                rec.update(
                    p.get("name"),
                    status="running",
                    heartbeat_at=now,
                    progress_at=now,
                    last_progress=summary,
                    input_rows_total=total,
                )

        def _by_id(self, query_id) -> tuple[str, ProgressRecorder] | tuple[None, None]:
            # Idle and terminated events carry the query id, not its name.
            for name, rec in recorders.items():
                if rec.entry(name).get("id") == str(query_id):
                    return name, rec
            return None, None

        def onQueryIdle(self, event):
            name, rec = self._by_id(event.id)
            if rec and not self._ended(rec, name, event.runId):
                rec.update(name, status="running", heartbeat_at=time.time())

        def onQueryTerminated(self, event):
            name, rec = self._by_id(event.id)
            if rec:
                rec.update(
                    name,
                    status="failed" if event.exception else "stopped",
                    heartbeat_at=time.time(),
                    exception=event.exception,
                )

    return ProgressFileListener()
