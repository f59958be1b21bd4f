"""`darooghe demo`: the main job on the local stack, step by step with visible progress."""

from __future__ import annotations

import sys

from darooghe.demo import run_demo


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the local stack and print a summary")
    p.add_argument("--history-days", type=int, default=7, help="days of history to backfill (default 7)")
    p.add_argument("--event-rate", type=int, default=100, help="mean events per minute (default 100)")
    p.add_argument("--live-seconds", type=int, default=120, help="live generation phase (default 120)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        return run_demo(args)
    except Exception as exc:  # noqa: BLE001 - the demo reports any failure with its step
        print(f"darooghe demo failed: {exc}", file=sys.stderr)
        return 1
