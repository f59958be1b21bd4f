"""`darooghe stream fraud | metrics | start | stop | status`: the real-time layer's jobs.

`fraud` and `metrics` run a job in this process (Kafka: until stopped; `--source file`: until every
record file is processed). `start` runs one as a background service (`stream-fraud`,
`stream-metrics`: PID under $DAROOGHE_HOME/run, log under $DAROOGHE_HOME/logs; the Dagster sensor
restarts it if it dies), `stop` stops it (SIGTERM: the queries stop cleanly and resume from their
checkpoints next time; the sensor leaves it stopped), `status` shows liveness and the last
micro-batch from the progress files the sensor reads too.
"""

from __future__ import annotations

import argparse
import sys
import time

from darooghe.config import load_settings
from darooghe.streaming.options import (
    add_stream_arguments,
    run_from_args,
)
from darooghe.streaming.service import JOBS, job_health, start_job, stop_job


def register(sub) -> None:
    p = sub.add_parser("stream", help="the streaming jobs: fraud detection and live metrics")
    ssub = p.add_subparsers(dest="stream_action", required=True, metavar="ACTION")

    f = ssub.add_parser(
        "fraud",
        help="run the fraud detection query (alerts to darooghe.fraud_alerts, late "
        "transactions to darooghe.late_transactions)",
    )
    add_stream_arguments(f, fraud=True)
    f.set_defaults(func=run_fraud)

    m = ssub.add_parser("metrics", help="run the live metrics queries (darooghe.metrics.* topics)")
    add_stream_arguments(m, fraud=False)
    m.set_defaults(func=run_metrics)

    st = ssub.add_parser(
        "start", help="start a job as a background service (options as for the job)"
    )
    st.add_argument("job", choices=[*JOBS, "all"])
    st.add_argument("job_args", nargs=argparse.REMAINDER, help="options passed to the job")
    st.set_defaults(func=start)

    sp = ssub.add_parser("stop", help="stop a background job (it resumes from its checkpoint)")
    sp.add_argument("job", choices=[*JOBS, "all"])
    sp.set_defaults(func=stop)

    ss = ssub.add_parser("status", help="liveness and last micro-batch of the background jobs")
    ss.set_defaults(func=status)


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def run_fraud(args) -> int:
    return run_from_args("fraud", args, log=_log)


def run_metrics(args) -> int:
    return run_from_args("metrics", args, log=_log)


def _selected(job: str) -> list[str]:
    return list(JOBS) if job == "all" else [job]


def _job_parser(job: str) -> argparse.ArgumentParser:
    """The parser of `darooghe stream <job>` alone (the same arguments register() gives it)."""
    parser = argparse.ArgumentParser(prog=f"darooghe stream {job}")
    add_stream_arguments(parser, fraud=job == "fraud")
    return parser


def start(args) -> int:
    job_args = [a for a in args.job_args if a != "--"]
    for job in _selected(args.job):
        try:  # refuse bad options now rather than in a background log
            _job_parser(job).parse_args(job_args)
        except SystemExit:
            print(f"darooghe stream start {job}: invalid options {job_args}", file=sys.stderr)
            return 2
    settings = load_settings()
    for job in _selected(args.job):
        pid = start_job(job, job_args, settings)
        name = JOBS[job]
        if pid is None:
            print(f"{name}: already running")
        else:
            print(f"{name}: started (pid {pid}), log {settings.logs_dir / (name + '.log')}")
    return 0


def stop(args) -> int:
    settings = load_settings()
    for job in _selected(args.job):
        name = JOBS[job]
        stopped = stop_job(job, settings)
        print(f"{name}: {'stopped' if stopped else 'not running'}")
    return 0


def status(args) -> int:
    settings = load_settings()
    bad = False
    for job, name in JOBS.items():
        h = job_health(settings, job)
        bad |= h["status"] in ("stalled", "failed", "dead")
        facts = [f"pid {h['pid']}"] if h["pid"] else []
        if h["heartbeat_age_s"] is not None:
            facts.append(f"last heartbeat {h['heartbeat_age_s']:.0f} s ago")
        print(f"{name:<15} {h['status'].upper():<8} {', '.join(facts)}".rstrip())
        for qname, q in sorted(h["queries"].items()):
            p = q.get("last_progress")
            if not p:
                print(f"  {qname}: {q.get('status')}, no micro-batch yet")
                continue
            print(
                f"  {qname}: batch {p.get('batch_id')}, {p.get('input_rows_per_second')} rows/s in, "
                f"{p.get('processed_rows_per_second')} rows/s processed, batch "
                f"{p.get('batch_duration_ms')} ms, state rows {p.get('state_rows')}, watermark "
                f"{p.get('watermark')} (delay {p.get('watermark_delay_s')} s), behind latest "
                f"{p.get('offsets_behind_latest')}"
            )
        if h["counters"]:
            print(f"  counters: {h['counters']}")
    return 1 if bad else 0
