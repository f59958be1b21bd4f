"""Background processes with PID files: start detached, find, stop, and check their ports.

Used by the services (Kafka, FerretDB) and by the project's long-running jobs (generator,
validator, streaming jobs), so that every one of them has the same `start | stop | status`
behaviour, a log file under `$DAROOGHE_HOME/logs` and a PID file under `$DAROOGHE_HOME/run`.

A PID file holds "<pid> <start time>" (the process's creation time, epoch seconds). PIDs are
reused, so a PID alone does not say the process is ours: a PID file is trusted only when a live
process with that PID started at that time (a file from before start times were recorded: when
it started before the file was written); anything else (a dead PID, a reused one) is stale and is
removed without signalling anyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from darooghe.config import Settings


class ServiceError(RuntimeError):
    """A service that cannot be started, reached or stopped; the message says which and why."""


@dataclass(frozen=True)
class ManagedProcess:
    """A named background process of one DAROOGHE_HOME."""

    name: str
    settings: Settings

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The live PID from the PID file when that process is ours, else None.

        A stale PID file (dead process, or a PID now used by another process) is removed and
        reported.
        """
        try:
            fields = self.pid_file.read_text().split()
            pid = int(fields[0])
            started = float(fields[1]) if len(fields) > 1 else None
            written = self.pid_file.stat().st_mtime
        except (FileNotFoundError, ValueError, IndexError):
            return None
        if not _alive(pid):
            why = f"pid {pid} is not running"
        elif not _is_ours(pid, started, written):
            why = f"pid {pid} is another process now (started at another time), not ours"
        else:
            return pid
        print(f"{self.name}: stale PID file {self.pid_file} ({why}), removed")
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        **popen: object,
    ) -> int:
        """Start `argv` detached; `popen` passes e.g. `user=`/`group=` to run it as another user."""
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # survives the CLI that started it; no terminal signals
                **popen,
            )
        try:
            started = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            started = 0.0  # already gone: the file is stale at once
        self.pid_file.write_text(f"{proc.pid} {started:.3f}\n")
        return proc.pid

    def stop(self, timeout: float = 30.0, sig: signal.Signals = signal.SIGTERM) -> bool:
        """`sig` (SIGTERM), wait, then SIGKILL. Returns True when something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            started = psutil.Process(pid).create_time()
            os.kill(pid, sig)
        except psutil.NoSuchProcess:
            started = None
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if started is not None and _alive(pid) and _is_ours(pid, started, None):
            print(f"{self.name}: pid {pid} did not stop within {timeout:.0f} s, killing it")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"


def stop_group(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Stop a child started with `start_new_session=True` and everything it started (a Spark
    driver's JVM, a browser's renderers): SIGTERM to its process group, SIGKILL after `timeout`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def reap(pid: int) -> None:
    """Collect `pid`'s exit status when it is a dead child of this process: a process that started
    a service and outlives it (a test session) would otherwise keep a zombie with that PID, and
    PostgreSQL refuses to start while its lock file names a PID that still exists."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _is_ours(pid: int, started: float | None, written: float | None) -> bool:
    """True when process `pid` was created at `started` (epoch s, as psutil reports it) or, with
    no start time recorded, before the PID file was written at `written`."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return False
    if started is not None:
        return abs(created - started) < 0.01
    return written is not None and created <= written + 1.0


def _alive(pid: int) -> bool:
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


def port_owner(port: int) -> str:
    """Who listens on `port`, as "pid N (command)" when the OS tells us, else "another process"."""
    try:
        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                try:
                    cmd = " ".join(psutil.Process(c.pid).cmdline())[:120]
                except psutil.Error:
                    cmd = "?"
                return f"pid {c.pid} ({cmd})"
    except (psutil.Error, PermissionError):
        pass
    return "another process"


def process_tree_listens(pid: int, port: int) -> bool:
    """True when `pid` (or a child of it) is the listener on `port`."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for p in procs:
        with contextlib.suppress(psutil.Error):
            for c in p.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port:
                    return True
    return False


@contextlib.contextmanager
def home_lock(settings: Settings, name: str = "services") -> Iterator[None]:
    """Serialise `services up/down` of one home (tests and a CLI may call `up` at the same time)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with (settings.run_dir / f"{name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
