"""The end-to-end demo: every part of the pipeline on the local stack, then a summary.

Order matters, and follows the data: a seeded history is backfilled (through the Dagster asset),
the validator routes it, the batch job builds the lake and the customer profiles the fraud job
needs, the streaming jobs start, the live generator adds a couple of minutes of traffic with
injected fraud and invalid events, and once the validator and the streams have caught up every
remaining asset is materialised: sinks, batch refresh, storage, charts and the dashboard.

Each step prints what it does and how long it took. Materialisations go through the Dagster
instance of this home, so `make ui` shows them afterwards. The services, the validator and the
streaming jobs stay up after the demo; `make down` stops everything.

It lives in the code location because it drives the Dagster definitions (Definitions, jobs,
execute_in_process); what needs no Dagster (options, waits, summary) is darooghe.demo.
`darooghe demo` runs this module: `python -m darooghe_assets.demo --help`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import dagster as dg

from darooghe import dagster_home
from darooghe.config import Settings, load_settings
from darooghe.demo import (
    DemoOptions,
    Summary,
    add_arguments,
    cli_command,
    collect_summary,
    options_from_args,
    print_summary,
    run_foreground,
    step,
    stream_caught_up,
    validator_lag,
    wait_for,
)
from darooghe.services import stack
from darooghe.services.process import ManagedProcess
from darooghe.streaming import service as streams
from darooghe_assets import constants as c
from darooghe_assets.definitions import defs

#: The console shows the assets' own INFO lines, not Dagster's DEBUG events (the UI keeps them all).
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
STREAM_JOBS = ("fraud", "metrics")
#: What the last step materialises besides the sinks and charts groups: the hourly storage path
#: and the summaries (the analytics ran on the history in the batch step; in production they
#: refresh daily, the live minutes reach the lake and the 24-hour store through the hourly path).
FINAL_ASSETS = [
    c.TRANSACTIONS_LAKE,
    c.TRANSACTIONS_COLLECTION,
    c.TRANSACTIONS_RETENTION,
    c.SUMMARY_BY_MERCHANT,
    c.SUMMARY_BY_SEGMENT,
    c.SUMMARY_BY_PERIOD,
    c.COMMISSION_BY_CATEGORY_OVER_TIME,
]


def materialize(selection: list, title: str, run_config: dict | None = None) -> None:
    """Materialise assets in this process through the home's Dagster instance."""
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
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def(name).execute_in_process(
            instance=instance, run_config=QUIET_LOGS, raise_on_error=False
        )
    mats = [e for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    print(f"    job {name}: {len(mats)} materialisations, success={result.success}", flush=True)
    if not result.success:
        raise RuntimeError(f"Dagster job {name} failed; see `make ui` for the run's logs")


def backfill_history(opts: DemoOptions) -> None:
    config = {"seed": opts.seed, "days": opts.history_days, "event_rate": opts.history_rate}
    materialize(
        [c.HISTORICAL_BACKFILL],
        "historical_backfill",
        {"ops": {"historical_backfill": {"config": config}}},
    )


def wait_for_validator(s: Settings, opts: DemoOptions) -> None:
    wait_for("validator caught up", lambda: (validator_lag(s) == 0, f"lag {validator_lag(s)}"), opts.wait_timeout)


def start_validator(s: Settings, opts: DemoOptions) -> None:
    if ManagedProcess("validator", s).pid() is None:
        run_foreground(cli_command("validate", "--source", "kafka", "--detach"))
    wait_for_validator(s, opts)


def wait_for_streams(s: Settings, opts: DemoOptions, what: str) -> None:
    mark = time.time()
    for job in STREAM_JOBS:
        wait_for(f"stream {job} {what}", lambda j=job: stream_caught_up(s, j, mark), opts.wait_timeout)


def start_streams(s: Settings, opts: DemoOptions, t0: float) -> None:
    for job in STREAM_JOBS:
        pid = streams.start_job(job, [], s)
        print(f"    stream {job}: " + (f"started pid {pid}" if pid else "already running"), flush=True)
    wait_for_streams(s, opts, "caught up with the history")
    # The history's alerts into MongoDB now, not only in the last step: what an operator looks
    # for first.
    materialize([c.FRAUD_ALERTS_COLLECTION], "fraud alerts sink")
    print(f"    first alerts in MongoDB {time.monotonic() - t0:.0f} s after the start", flush=True)


def generate_live(s: Settings, opts: DemoOptions) -> None:
    run_foreground(
        cli_command(
            "generate", "--mode", "live", "--duration", str(opts.live_seconds),
            "--event-rate", str(opts.live_rate), "--fraud-rate", str(opts.fraud_rate),
            "--seed", str(opts.seed),
        )
    )  # fmt: skip
    wait_for_validator(s, opts)
    wait_for_streams(s, opts, "caught up")


def materialize_the_rest() -> None:
    graph = defs.resolve_asset_graph()
    wanted = FINAL_ASSETS + [
        key
        for key in graph.materializable_asset_keys
        if graph.get(key).group_name in (c.GROUP_SINKS, c.GROUP_CHARTS)
    ]
    materialize(wanted, "storage, summaries, sinks and charts")


def summarise(s: Settings) -> Summary:
    sm = collect_summary(s)
    try:
        from darooghe.charts.browser import inspect_page

        shot = s.home / "artifacts" / "dashboard.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        inspect_page(s.charts_dir / "dashboard.html", screenshot=shot)
        sm.screenshot = str(shot)
    except Exception as exc:  # noqa: BLE001 - a missing browser must not fail the demo
        print(f"    (no dashboard screenshot: {exc})", flush=True)
    return sm


def run_demo(opts: DemoOptions | None = None) -> int:
    opts = opts or DemoOptions()
    s = load_settings()
    t0 = time.monotonic()
    # Materialisations go to this home's instance, so the UI shows them.
    os.environ["DAGSTER_HOME"] = dagster_home.prepare(s)["DAGSTER_HOME"]

    with step("1/8 services up: Kafka 4 (KRaft), PostgreSQL + FerretDB, topics"):
        stack.up(s, log=lambda m: print(f"    {m}", flush=True))
    with step(f"2/8 historical backfill: {opts.history_days} days at {opts.history_rate:g} events/min (seed {opts.seed})"):
        backfill_history(opts)
    with step("3/8 validator (exactly-once, background) routes the history"):
        start_validator(s, opts)
    with step("4/8 batch: lake, analytics, customer profiles, storage and MongoDB summaries (Spark)"):
        run_job(c.BATCH_JOB)
    with step("5/8 streaming jobs: fraud detection and live metrics (background Spark)"):
        start_streams(s, opts, t0)
    with step(f"6/8 live generation: {opts.live_seconds} s at {opts.live_rate:g} events/min, fraud rate {opts.fraud_rate:g}"):
        generate_live(s, opts)
    with step("7/8 materialise: lake and detailed transactions, MongoDB summaries, sinks, charts, dashboard"):
        materialize_the_rest()
    with step("8/8 summary"):
        sm = summarise(s)
    print_summary(sm, s, time.monotonic() - t0)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="darooghe demo", description="run the whole pipeline on the local stack and print a summary"
    )
    add_arguments(parser)
    opts = options_from_args(parser.parse_args(argv))
    try:
        return run_demo(opts)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the demo reports any failure with its step
        print(f"\ndarooghe demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
