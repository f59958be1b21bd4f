"""`darooghe monitor`: the Prometheus exporter (consumer lag, Spark executor CPU/memory, GC time)."""

from __future__ import annotations

from darooghe import monitoring
from darooghe.config import load_settings


def register(sub) -> None:
    p = sub.add_parser("monitor", help="serve Prometheus metrics on 127.0.0.1:$DAROOGHE_MONITOR_PORT (9108)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--once", action="store_true", help="print the metrics once and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    s = load_settings()
    if args.once:
        print(monitoring.render_once(s), end="")
        return 0
    monitoring.serve(args.host, s.monitor_port, s)
    return 0
