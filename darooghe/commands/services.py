"""`darooghe services up | down | status`."""

from __future__ import annotations

import os
import sys

from darooghe.config import ConfigError
from darooghe.services import stack
from darooghe.services.process import ServiceError

SERVICE_NAMES = ("kafka", "postgres", "mongodb", "kafka-1", "kafka-2", "kafka-3", "spark-master")


def register(sub) -> None:
    p = sub.add_parser("services", help="start, stop or check the local Kafka broker, PostgreSQL and FerretDB")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument(
        "--cluster",
        action="store_true",
        help="the cluster topology: 3 Kafka brokers (KRaft quorum of 3), a Spark standalone master "
        "and workers, on 127.0.0.1 (same as DAROOGHE_TOPOLOGY=cluster)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "cluster", False):
        os.environ["DAROOGHE_TOPOLOGY"] = "cluster"  # read by load_settings, here and in children
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
