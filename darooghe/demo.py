"""The end-to-end demo: every part of the pipeline on the local stack, then a summary.

Order matters, and follows the data: a seeded history is backfilled (through the Dagster asset),
the validator routes it, the batch job builds the lake and the customer profiles the fraud job
needs, the streaming jobs start, the live generator adds a couple of minutes of traffic with
injected fraud and invalid events, and once the validator and the streams have caught up every
remaining asset is materialised: sinks, batch refresh, storage, charts and the dashboard.

Each step prints what it does and how long it took. Materialisations go through the Dagster
instance of this home, so `make ui` shows them afterwards. The services, the validator and the
streaming jobs stay up after the demo; `make down` stops everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from darooghe import kafka_io, topics
from darooghe.config import Settings, load_settings
from darooghe.fraud.ruleset import BLOCK, REVIEW
from darooghe.schema import ERROR_CODES
from darooghe.services import stack

VALIDATOR_GROUP = "darooghe-validator"
#: The console shows the assets' own INFO lines, not Dagster's DEBUG events (the UI keeps them all).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class DemoOptions:
    history_days: int = 7
    history_rate: float = 20.0  # events per minute in the backfill
    live_rate: float = 300.0  # events per minute in the live phase
    live_seconds: int = 120
    fraud_rate: float = 0.05
    seed: int = 7
    wait_timeout: float = 300.0


@dataclass
class Summary:
    produced: int = 0
    valid: int = 0
    errors: Counter = field(default_factory=Counter)
    #: alert quality per rule against the labels and the oracle (darooghe.fraud.quality)
    quality: object = None
    decisions: Counter = field(default_factory=Counter)
    collections: dict[str, int] = field(default_factory=dict)
    charts: list[str] = field(default_factory=list)
    screenshot: str | None = None


@contextmanager
def step(title: str):
    print(f"\n==> {title}", flush=True)
    t0 = time.monotonic()
    yield
    print(f"    done in {time.monotonic() - t0:.1f} s", flush=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "darooghe.cli", *args]


def _run(argv: list[str]) -> None:
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


def materialize(selection: list, title: str, run_config: dict | None = None) -> None:
    """Materialise assets in this process through the home's Dagster instance."""
    import dagster as dg

    from darooghe_assets.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=selection,
            run_config={**QUIET_LOGS, **(run_config or {})},
            raise_on_error=False,
        )
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    print(f"    {title}: {len(mats)} materialisations" + (f", failed steps: {failed}" if failed else ""), flush=True)
    if failed:
        raise RuntimeError(f"{title}: steps failed: {', '.join(failed)}")


def run_job(name: str) -> None:
    import dagster as dg

    from darooghe_assets.definitions import defs

    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(name).execute_in_process(
            instance=instance, run_config=QUIET_LOGS, raise_on_error=False
        )
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    print(f"    job {name}: {len(mats)} materialisations, success={result.success}", flush=True)
    if not result.success:
        raise RuntimeError(f"Dagster job {name} failed; see `make ui` for the run's logs")


def collect_summary(s: Settings) -> Summary:
    from darooghe.mongo_client import connect

    out = Summary()
    from darooghe.fraud.profiles import ProfileSource
    from darooghe.fraud.quality import quality_from_kafka

    out.produced = kafka_io.count_records(topics.TRANSACTIONS.name, s)
    for rec in kafka_io.consume_all(topics.ERROR_LOGS.name, s):
        for code in json.loads(rec.value).get("error_codes", []):
            out.errors[code] += 1
    # The oracle gets the averages the job judged with (the batch profiles in MongoDB).
    try:
        averages = ProfileSource(None, s).load()
    except LookupError as exc:  # no batch layer yet: the oracle judges no amount
        print(f"    (oracle without averages: {exc})", flush=True)
        averages = {}
    out.quality = quality_from_kafka(
        s,
        topics.VALID_TRANSACTIONS.name,
        topics.FRAUD_ALERTS.name,
        averages,
        late_topic=topics.LATE_TRANSACTIONS.name,
    )
    out.valid = out.quality.transactions
    for rec in kafka_io.consume_all(topics.FRAUD_DECISIONS.name, s):
        out.decisions[json.loads(rec.value)["decision"]] += 1
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
    for line in sm.quality.lines():
        print(line)
    print(
        "fraud decisions (transactions, darooghe.fraud_decisions): "
        + ", ".join(f"{d}={sm.decisions.get(d, 0)}" for d in (REVIEW, BLOCK))
    )
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


def run_demo(opts: DemoOptions | None = None) -> int:
    from darooghe import dagster_home
    from darooghe.streaming import service as streams
    from darooghe_assets import constants as c

    opts = opts or DemoOptions()
    s = load_settings()
    t0 = time.monotonic()
    # Materialisations go to this home's instance, so the UI shows them.
    os.environ["DAGSTER_HOME"] = dagster_home.prepare(s)["DAGSTER_HOME"]

    with step("1/8 services up: Kafka 4 (KRaft), PostgreSQL + FerretDB, topics"):
        stack.up(s, log=lambda m: print(f"    {m}", flush=True))

    with step(f"2/8 historical backfill: {opts.history_days} days at {opts.history_rate:g} events/min (seed {opts.seed})"):
        materialize(
            [c.HISTORICAL_BACKFILL],
            "historical_backfill",
            {
                "ops": {
                    "historical_backfill": {
                        "config": {
                            "seed": opts.seed,
                            "days": opts.history_days,
                            "event_rate": opts.history_rate,
                        }
                    }
                }
            },
        )

    with step("3/8 validator (exactly-once, background) routes the history"):
        from darooghe.services.process import ManagedProcess

        if ManagedProcess("validator", s).pid() is None:
            _run(_cli("validate", "--source", "kafka", "--detach"))
        wait_for("validator caught up", lambda: (validator_lag(s) == 0, f"lag {validator_lag(s)}"), opts.wait_timeout)

    with step("4/8 batch: lake, analytics, customer profiles, storage and MongoDB summaries (Spark)"):
        run_job(c.BATCH_JOB)

    with step("5/8 streaming jobs: fraud detection and live metrics (background Spark)"):
        for job in ("fraud", "metrics"):
            pid = streams.start_job(job, [], s)
            print(f"    stream {job}: " + (f"started pid {pid}" if pid else "already running"), flush=True)
        mark = time.time()
        for job in ("fraud", "metrics"):
            wait_for(f"stream {job} caught up with the history", lambda j=job: stream_caught_up(s, j, mark), opts.wait_timeout)
        # The history's alerts into MongoDB now, not only in step 7: what an operator looks for first.
        materialize([c.FRAUD_ALERTS_COLLECTION], "fraud alerts sink")
        print(f"    first alerts in MongoDB {time.monotonic() - t0:.0f} s after the start", flush=True)

    with step(f"6/8 live generation: {opts.live_seconds} s at {opts.live_rate:g} events/min, fraud rate {opts.fraud_rate:g}"):
        _run(
            _cli(
                "generate", "--mode", "live", "--duration", str(opts.live_seconds),
                "--event-rate", str(opts.live_rate), "--fraud-rate", str(opts.fraud_rate),
                "--seed", str(opts.seed),
            )
        )
        wait_for("validator caught up", lambda: (validator_lag(s) == 0, f"lag {validator_lag(s)}"), opts.wait_timeout)
        mark = time.time()
        for job in ("fraud", "metrics"):
            wait_for(f"stream {job} caught up", lambda j=job: stream_caught_up(s, j, mark), opts.wait_timeout)

    with step("7/8 materialise: lake and detailed transactions, MongoDB summaries, sinks, charts, dashboard"):
        # The analytics ran on the history in step 4 (in production they refresh daily); the live
        # minutes reach the lake, the 24-hour collection and the summaries through the hourly path.
        from darooghe_assets.definitions import defs

        graph = defs.resolve_asset_graph()
        wanted = [c.TRANSACTIONS_LAKE, c.TRANSACTIONS_COLLECTION, c.TRANSACTIONS_RETENTION,
                  c.SUMMARY_BY_MERCHANT, c.SUMMARY_BY_SEGMENT, c.SUMMARY_BY_PERIOD,
                  c.COMMISSION_BY_CATEGORY_OVER_TIME]
        wanted += [
            key
            for key in graph.materializable_asset_keys
            if graph.get(key).group_name in (c.GROUP_SINKS, c.GROUP_CHARTS)
        ]
        materialize(wanted, "storage, summaries, sinks and charts")

    with step("8/8 summary"):
        sm = collect_summary(s)
        try:
            from darooghe.charts.browser import inspect_page

            shot = s.home / "artifacts" / "dashboard.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            inspect_page(s.charts_dir / "dashboard.html", screenshot=shot)
            sm.screenshot = str(shot)
        except Exception as exc:  # noqa: BLE001 - a missing browser must not fail the demo
            print(f"    (no dashboard screenshot: {exc})", flush=True)
    print_summary(sm, s, time.monotonic() - t0)
    return 0
