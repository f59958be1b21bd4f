"""`darooghe demo`: the main job on the local stack, step by step with visible progress."""

from __future__ import annotations

import sys

from darooghe.demo import DemoOptions, run_demo


def register(sub) -> None:
    d = DemoOptions()
    p = sub.add_parser("demo", help="run the whole pipeline on the local stack and print a summary")
    p.add_argument("--history-days", type=int, default=d.history_days, help=f"days of history (default {d.history_days})")
    p.add_argument("--history-rate", type=float, default=d.history_rate, help=f"history events per minute (default {d.history_rate:g})")
    p.add_argument("--live-seconds", type=int, default=d.live_seconds, help=f"live phase length (default {d.live_seconds})")
    p.add_argument("--live-rate", type=float, default=d.live_rate, help=f"live events per minute (default {d.live_rate:g})")
    p.add_argument("--fraud-rate", type=float, default=d.fraud_rate, help=f"live fraud share (default {d.fraud_rate:g})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(func=run)


def run(args) -> int:
    opts = DemoOptions(
        history_days=args.history_days,
        history_rate=args.history_rate,
        live_rate=args.live_rate,
        live_seconds=args.live_seconds,
        fraud_rate=args.fraud_rate,
        seed=args.seed,
    )
    try:
        return run_demo(opts)
    except Exception as exc:  # noqa: BLE001 - the demo reports any failure with its step
        print(f"\ndarooghe demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
