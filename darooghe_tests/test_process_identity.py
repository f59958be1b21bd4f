"""PID files are checked against the process's start time before anything is signalled: a PID
reused by another process after ours died must never be stopped or SIGKILLed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time

import psutil
import pytest

from darooghe.config import load_settings
from darooghe.services.process import ManagedProcess


@pytest.fixture()
def settings(tmp_path):
    return dataclasses.replace(load_settings(), home=tmp_path / "home")


@pytest.fixture()
def stranger():
    """A live process that is not the managed one (stands for whoever got the PID next)."""
    proc = subprocess.Popen(["sleep", "120"])
    yield proc
    proc.kill()
    proc.wait(10)


def test_own_process_is_found_and_stopped(settings):
    proc = ManagedProcess("sleeper", settings)
    pid = proc.start(["sleep", "120"])
    assert proc.pid() == pid
    assert proc.stop(timeout=10) is True
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not proc.pid_file.exists()


def _write(proc: ManagedProcess, content: str) -> None:
    """A PID file written an hour ago (before the process now holding that PID started)."""
    proc.pid_file.write_text(content)
    an_hour_ago = time.time() - 3600
    os.utime(proc.pid_file, (an_hour_ago, an_hour_ago))


def test_pid_file_without_start_time_is_trusted_when_older_than_the_process_is_not(settings):
    proc = ManagedProcess("sleeper", settings)
    pid = proc.start(["sleep", "120"])
    try:
        proc.pid_file.write_text(f"{pid}\n")  # the layout before start times were recorded
        assert proc.pid() == pid
    finally:
        proc.pid_file.write_text(f"{pid}\n")
        assert proc.stop(timeout=10) is True


@pytest.mark.parametrize("layout", ["pid only", "other start time"])
def test_reused_pid_is_not_signalled(settings, stranger, capsys, layout):
    proc = ManagedProcess("sleeper", settings)
    proc.pid_file.parent.mkdir(parents=True)
    started = psutil.Process(stranger.pid).create_time()
    content = (
        f"{stranger.pid}\n" if layout == "pid only" else f"{stranger.pid} {started - 3600:.3f}\n"
    )
    _write(proc, content)
    assert proc.pid() is None
    assert "not ours" in capsys.readouterr().out
    _write(proc, content)
    assert proc.stop(timeout=2) is False
    time.sleep(0.2)
    assert stranger.poll() is None  # still running: never signalled
