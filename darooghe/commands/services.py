"""`darooghe services up | down | status`."""

from __future__ import annotations

import sys

from darooghe.config import ConfigError
from darooghe.services import stack
from darooghe.services.process import ServiceError

SERVICE_NAMES = ("kafka", "postgres", "mongodb")


def register(sub) -> None:
    p = sub.add_parser("services", help="start, stop or check the local Kafka broker, PostgreSQL and FerretDB")
    p.add_argument("action", choices=["up", "down", "status"])
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        if args.action == "up":
            stack.up()
            return 0
        if args.action == "down":
            stack.down()
            return 0
        rows = stack.status()
    except (ServiceError, ConfigError, FileNotFoundError, RuntimeError) as exc:
        print(f"darooghe services {args.action}: {exc}", file=sys.stderr)
        return 1
    width = max(len(r.name) for r in rows)
    for r in rows:
        mark = "UP  " if r.healthy else "DOWN"
        print(f"{r.name:<{width}}  {mark}  {r.address}  {r.detail}")
    # Exit status reflects the services; the project's jobs are listed for information.
    down = [r.name for r in rows if r.name in SERVICE_NAMES and not r.healthy]
    return 1 if down else 0
