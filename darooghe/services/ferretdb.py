"""The local MongoDB-wire-compatible database: FerretDB 1.24.2 on SQLite, built by `make install`.

FerretDB 1.x lacks TTL indexes, the $avg/$min/$max/$first/$last/$push accumulators, date
operators, $lookup, $facet, change streams and transactions; code that runs against it stays within
what it supports (see README, "MongoDB on FerretDB").
"""

from __future__ import annotations

from darooghe.config import Settings


def command(s: Settings) -> list[str]:
    binary = s.ferretdb_binary
    if not binary.exists():
        raise FileNotFoundError(f"FerretDB launcher not found at {binary}: run `make install`")
    return [
        str(binary),
        f"--listen-addr={s.mongo_host}:{s.mongo_port}",
        f"--sqlite-dir={s.ferretdb_data_dir}",
        "--log-level=error",
    ]
