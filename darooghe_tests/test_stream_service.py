"""The streaming jobs as background services: what `start` records for automatic restarts."""

from __future__ import annotations

import json
import sys
import time

import pytest

from darooghe.services.process import ManagedProcess
from darooghe.streaming import service
from darooghe.streaming.progress import progress_path, write_json_atomic
from darooghe.streaming.service import (
    HUNG_AFTER_S,
    JOBS,
    enabled_args,
    job_health,
    restart_if_unhealthy,
    restart_reason,
    start_job,
)


def _wait_dead(settings, job: str, timeout: float = 120.0) -> None:
    proc = ManagedProcess(JOBS[job], settings)
    deadline = time.monotonic() + timeout
    while proc.pid() is not None:
        assert time.monotonic() < deadline, f"{JOBS[job]} did not exit"
        time.sleep(0.5)


def _started_command_lines(settings, job: str) -> list[str]:
    log = ManagedProcess(JOBS[job], settings).log_file.read_text()
    return [line for line in log.splitlines() if line.startswith("=== ") and "starting:" in line]


@pytest.mark.parametrize("fresh", ["--fresh", "--f"])  # argparse accepts an unambiguous prefix
def test_fresh_applies_to_the_start_it_was_given_to_and_never_to_a_restart(home, fresh):
    # `--source file` without --input: the job refuses its options and exits at once (dead, enabled).
    start_job("fraud", ["--source", "file", fresh], home)
    _wait_dead(home, "fraud")
    assert enabled_args(home, "fraud") == ["--source", "file"]
    assert restart_if_unhealthy("fraud", home) is not None
    _wait_dead(home, "fraud")
    first, restart = _started_command_lines(home, "fraud")
    assert first.endswith(f"stream fraud --source file {fresh}")
    assert restart.endswith("stream fraud --source file")


def test_a_fresh_flag_saved_by_an_older_version_is_not_replayed(home):
    (home.run_dir / f"{JOBS['metrics']}.enabled").write_text(
        json.dumps({"args": ["--fresh", "--trigger-seconds", "5"]})
    )
    assert enabled_args(home, "metrics") == ["--trigger-seconds", "5"]


def _last_heartbeat(settings, job: str, pid: int, age_s: float) -> None:
    write_json_atomic(
        progress_path(settings, JOBS[job]),
        {"job": JOBS[job], "pid": pid,
         "queries": {"q": {"status": "running", "heartbeat_at": time.time() - age_s}}},
    )


def test_a_hung_job_is_stopped_and_started_again_with_its_arguments(home, monkeypatch):
    started = []
    monkeypatch.setattr(service, "start_job", lambda job, args, settings: started.append((job, args)) or 1)
    proc = ManagedProcess(JOBS["fraud"], home)
    pid = proc.start([sys.executable, "-c", "import time; time.sleep(600)"])
    (home.run_dir / f"{JOBS['fraud']}.enabled").write_text(json.dumps({"args": ["--source", "kafka"]}))
    try:
        _last_heartbeat(home, "fraud", pid, HUNG_AFTER_S / 2)
        health = job_health(home, "fraud")
        assert health["status"] == "stalled" and restart_reason(health) is None  # slow, not hung yet
        assert restart_if_unhealthy("fraud", home) is None and proc.pid() == pid

        _last_heartbeat(home, "fraud", pid, HUNG_AFTER_S + 5)
        assert restart_reason(job_health(home, "fraud")) == "hung"
        assert restart_if_unhealthy("fraud", home) == 1
        assert proc.pid() is None  # the hung process was stopped before the new start
        assert started == [("fraud", ["--source", "kafka"])]
    finally:
        proc.stop(timeout=5)
