"""The parts of the end-to-end demo that need no Dagster: its options, progress, waits and summary.

The demo itself (darooghe_assets/demo.py) drives the Dagster assets and jobs, so it lives in the
code location; this core package never imports the code location (`darooghe demo` runs it as a
program, `python -m darooghe_assets.demo`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from darooghe import kafka_io, topics
from darooghe.config import Settings
from darooghe.schema import ERROR_CODES, FRAUD_RULES

VALIDATOR_GROUP = "darooghe-validator"


@dataclass
class DemoOptions:
    history_days: int = 7
    history_rate: float = 20.0  # events per minute in the backfill
    live_rate: float = 300.0  # events per minute in the live phase
    live_seconds: int = 120
    fraud_rate: float = 0.05
    seed: int = 7
    wait_timeout: float = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's knobs, for `darooghe demo` and `python -m darooghe_assets.demo` alike."""
    d = DemoOptions()
    add = parser.add_argument
    add("--history-days", type=int, default=d.history_days, help=f"days of history (default {d.history_days})")
    add("--history-rate", type=float, default=d.history_rate, help=f"history events per minute (default {d.history_rate:g})")
    add("--live-seconds", type=int, default=d.live_seconds, help=f"live phase length (default {d.live_seconds})")
    add("--live-rate", type=float, default=d.live_rate, help=f"live events per minute (default {d.live_rate:g})")
    add("--fraud-rate", type=float, default=d.fraud_rate, help=f"live fraud share (default {d.fraud_rate:g})")
    add("--seed", type=int, default=d.seed)


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        history_days=args.history_days,
        history_rate=args.history_rate,
        live_rate=args.live_rate,
        live_seconds=args.live_seconds,
        fraud_rate=args.fraud_rate,
        seed=args.seed,
    )


def options_argv(opts: DemoOptions) -> list[str]:
    """The command line that add_arguments parses back into `opts`."""
    return [
        "--history-days", str(opts.history_days), "--history-rate", repr(opts.history_rate),
        "--live-seconds", str(opts.live_seconds), "--live-rate", repr(opts.live_rate),
        "--fraud-rate", repr(opts.fraud_rate), "--seed", str(opts.seed),
    ]  # fmt: skip


@dataclass
class Summary:
    produced: int = 0
    valid: int = 0
    errors: Counter = field(default_factory=Counter)
    alerts: Counter = field(default_factory=Counter)
    labelled: Counter = field(default_factory=Counter)
    caught: Counter = field(default_factory=Counter)
    collections: dict[str, int] = field(default_factory=dict)
    charts: list[str] = field(default_factory=list)
    screenshot: str | None = None


@contextmanager
def step(title: str):
    print(f"\n==> {title}", flush=True)
    t0 = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - t0:.1f} s", flush=True)


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "darooghe.cli", *args]


def run_foreground(argv: list[str]) -> None:
    """Run a CLI step in the foreground, its progress lines indented under the step."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"    {line.rstrip()}", flush=True)
    if proc.wait() != 0:
        raise RuntimeError(f"`{' '.join(argv[2:])}` exited with status {proc.returncode}")


def validator_lag(s: Settings) -> int:
    return sum(kafka_io.group_lag(topics.TRANSACTIONS.name, VALIDATOR_GROUP, s).values())


def wait_for(what: str, done: Callable[[], tuple[bool, str]], timeout: float, every: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    last_print = 0.0
    while True:
        ok, detail = done()
        if ok:
            print(f"    {what}: {detail}", flush=True)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s ({detail})")
        if time.monotonic() - last_print > 10:
            print(f"    waiting for {what}: {detail}", flush=True)
            last_print = time.monotonic()
        time.sleep(every)


def stream_caught_up(s: Settings, job: str, since: float) -> tuple[bool, str]:
    """Every query of a streaming job reported, after `since`, that it is 0 offsets behind latest,
    or was idle after `since` (it looked for new records and found none) after a batch that left it
    0 behind: a query whose last batch ran just before `since` reports no progress until new data."""
    from darooghe.streaming.progress import progress_path, read_progress

    doc = read_progress(progress_path(s, f"stream-{job}")) or {}
    queries = doc.get("queries") or {}
    if not queries:
        return False, "no progress reported yet"
    states = []
    for name, q in sorted(queries.items()):
        behind = (q.get("last_progress") or {}).get("offsets_behind_latest")
        idle_since = q.get("status") == "running" and (q.get("heartbeat_at") or 0) > since
        fresh = (q.get("progress_at") or 0) > since or idle_since
        states.append((name, behind, fresh))
    done = all(fresh and behind == 0 for _, behind, fresh in states)
    return done, ", ".join(f"{n}: {'?' if b is None else b} behind" for n, b, _ in states)


def collect_summary(s: Settings) -> Summary:
    from darooghe.mongo_client import connect

    out = Summary()
    out.produced = kafka_io.count_records(topics.TRANSACTIONS.name, s)
    labels: dict[str, set[str]] = {}
    for rec in kafka_io.consume_all(topics.VALID_TRANSACTIONS.name, s):
        out.valid += 1
        label = rec.headers.get(topics.LABEL_HEADER)
        if label:
            txn_id = json.loads(rec.value)["transaction_id"]
            for rule in label.split(","):
                if rule in FRAUD_RULES:
                    labels.setdefault(rule, set()).add(txn_id)
    for rec in kafka_io.consume_all(topics.ERROR_LOGS.name, s):
        for code in json.loads(rec.value).get("error_codes", []):
            out.errors[code] += 1
    alerted: dict[str, set[str]] = {}
    for rec in kafka_io.consume_all(topics.FRAUD_ALERTS.name, s):
        alert = json.loads(rec.value)
        alerted.setdefault(alert["rule"], set()).add(alert["transaction_id"])
    for rule in FRAUD_RULES:
        out.alerts[rule] = len(alerted.get(rule, ()))
        out.labelled[rule] = len(labels.get(rule, ()))
        out.caught[rule] = len(labels.get(rule, set()) & alerted.get(rule, set()))
    with connect(s.mongo_uri) as client:
        db = client[s.mongo_db]
        for name in sorted(db.list_collection_names()):
            out.collections[name] = db[name].estimated_document_count()
    out.charts = sorted(str(p) for p in s.charts_dir.glob("*.png"))
    return out


def print_summary(sm: Summary, s: Settings, seconds: float) -> None:
    print("\n================ Darooghe demo summary ================")
    print(f"records produced to {topics.TRANSACTIONS.name}: {sm.produced}")
    print(f"valid: {sm.valid}   errors: {sum(sm.errors.values())} records")
    print("errors by code: " + ", ".join(f"{c}={sm.errors.get(c, 0)}" for c in ERROR_CODES))
    print("fraud alerts by rule (recall against the generator's labels on valid transactions):")
    for rule in FRAUD_RULES:
        lab, hit = sm.labelled[rule], sm.caught[rule]
        recall = f"{hit / lab:.1%}" if lab else "n/a"
        print(f"  {rule:<15} alerts={sm.alerts[rule]:<6} labelled={lab:<6} caught={hit:<6} recall={recall}")
    print("MongoDB collections (documents):")
    for name, n in sm.collections.items():
        print(f"  {name:<36} {n}")
    print(f"charts ({len(sm.charts)} PNG) in {s.charts_dir}:")
    for path in sm.charts:
        print(f"  {path}")
    print(f"dashboard: {s.charts_dir / 'dashboard.html'}")
    if sm.screenshot:
        print(f"dashboard screenshot: {sm.screenshot}")
    print(f"\nDemo finished in {seconds:.0f} s. DAROOGHE_HOME={s.home}")
    print("Open:")
    print(f"  dashboard   file://{s.charts_dir / 'dashboard.html'}")
    print(f"  Dagster UI  http://127.0.0.1:{s.dagster_port} (start it with `make ui`)")
    print(f"  Prometheus  http://127.0.0.1:{s.prometheus_port} (alerts: /alerts, lag: darooghe_kafka_consumer_lag_sum)")
    print(f"  exporter    http://127.0.0.1:{s.monitor_port}/metrics")
    print("Stop everything: `make down`.")
