"""The local MongoDB-wire-compatible database: FerretDB 1.24.2 built by `make install`.

The project runs it on its PostgreSQL backend (darooghe.services.postgres). The launcher also
has the SQLite backend, which only the storage benchmark starts, as the baseline it measures.
FerretDB 1.x lacks TTL indexes, date operators, $lookup, $facet, change streams and transactions;
code that runs against it stays within what it and MongoDB 7 both support (README, "MongoDB").
"""

from __future__ import annotations

from pathlib import Path

from darooghe.config import Settings
from darooghe.services import postgres

URL_ENV = "DAROOGHE_FERRETDB_POSTGRESQL_URL"


def _binary(s: Settings) -> str:
    if not s.ferretdb_binary.exists():
        raise FileNotFoundError(f"FerretDB launcher not found at {s.ferretdb_binary}: run `make install`")
    return str(s.ferretdb_binary)


def command(s: Settings) -> tuple[list[str], dict[str, str]]:
    """argv and environment of FerretDB on PostgreSQL (the URL, with its password, in the env)."""
    argv = [_binary(s), f"--listen-addr={s.mongo_host}:{s.mongo_port}", "--handler=postgresql", "--log-level=error"]
    return argv, {URL_ENV: postgres.url(s)}


def sqlite_command(s: Settings, data_dir: Path, port: int) -> list[str]:
    """argv of FerretDB on SQLite in `data_dir` (the benchmark's baseline)."""
    return [_binary(s), f"--listen-addr={s.mongo_host}:{port}", "--handler=sqlite", f"--sqlite-dir={data_dir}", "--log-level=error"]
