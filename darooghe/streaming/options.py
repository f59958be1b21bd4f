"""Command-line options shared by `darooghe stream fraud|metrics` and the spark_apps/ scripts."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from darooghe.topics import LIVE_METRICS_SPAN_MS

#: Allowed lateness of both streaming jobs: how far behind the newest event time an event may
#: arrive and still count (the watermark trails by this plus the clock-skew allowance).
DEFAULT_LATENESS_MS = 2 * 60_000
#: Records per Kafka micro-batch when --max-offsets-per-trigger is not given, per job: 0 = no cap.
#: A cap bounds the memory of a backlog's micro-batch, but the watermark then runs ahead of the
#: partitions read more slowly: measured in `make demo` with 20,000 for fraud, replaying a week of
#: history made 2,901 rows late and unjudged (VELOCITY recall 97.8 %, GEO_IMPOSSIBLE 98.9 %),
#: where one uncapped batch made none. Exactness comes first, so no job is capped by default.
DEFAULT_MAX_OFFSETS_PER_TRIGGER = {"fraud": 0, "metrics": 0}
#: Micro-batch interval per job, seconds. The fraud job's alert latency is about the wait for the
#: next trigger plus a batch: measured live at 1,000 events/s (bench.streaming's feed, no
#: validator, 2 state partitions), 0.5 s gave p50/p99 1.26/2.22 s where 1 s gave 1.90/3.77 s. The
#: metrics job publishes per-minute windows, so a second is plenty and leaves the cores to fraud.
DEFAULT_TRIGGER_SECONDS = {"fraud": 0.5, "metrics": 1.0}
#: Deletes the work directory before a run: an order for one start, never part of a job's settings.
FRESH = "--fresh"
_UNITS_MS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}


def parse_duration_ms(text: str) -> int:
    """'120' (seconds), '90s', '2m', '2min', '500ms', '1h' -> milliseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(text).lower())
    if not m or (m.group(2) and m.group(2) not in _UNITS_MS):
        raise argparse.ArgumentTypeError(
            f"duration {text!r} is not a number with an optional unit (ms, s, m, min, h), e.g. 2m"
        )
    value = float(m.group(1)) * _UNITS_MS[m.group(2) or "s"]
    return round(value)


def without_fresh(job_args: list[str]) -> list[str]:
    """`job_args` minus FRESH (and the prefixes argparse takes for it), for what is kept to restart
    a job with: a restart that deleted the checkpoint would reprocess everything or lose state."""
    return [a for a in job_args if not (len(a) >= 3 and FRESH.startswith(a))]


def _cap(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record count >= 0 (0: no cap)")
    return value


def add_stream_arguments(p: argparse.ArgumentParser, fraud: bool) -> None:
    job = "fraud" if fraud else "metrics"
    p.add_argument(
        "--source",
        choices=["kafka", "file"],
        default="kafka",
        help="kafka (default; runs until stopped) or file (--input DIR, stops when done)",
    )
    p.add_argument(
        "--topic",
        help="input topic with --source kafka (default darooghe.valid_transactions)",
    )
    p.add_argument(
        "--input",
        type=Path,
        help="directory of record files, read in name order, "
        "one file per micro-batch (with --source file)",
    )
    p.add_argument(
        "--output",
        type=Path,
        help="write the values as JSON lines to FILE instead of "
        "Kafka" + ("" if fraud else " (one file per metric: FILE.<metric>.jsonl)"),
    )
    p.add_argument(
        "--allowed-lateness",
        type=parse_duration_ms,
        default=DEFAULT_LATENESS_MS,
        metavar="DURATION",
        help=f"watermark delay, e.g. 90s, 2m (default {DEFAULT_LATENESS_MS / 1000:g}s)",
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="work directory (checkpoint and job files); "
        "default under $DAROOGHE_HOME/checkpoints, one per source and sink",
    )
    p.add_argument(
        FRESH,
        action="store_true",
        help="delete the work directory first (start over instead of resuming)",
    )
    p.add_argument(
        "--trigger-seconds",
        type=float,
        default=DEFAULT_TRIGGER_SECONDS[job],
        help=f"micro-batch interval with --source kafka (default {DEFAULT_TRIGGER_SECONDS[job]:g})",
    )
    cap = DEFAULT_MAX_OFFSETS_PER_TRIGGER[job]
    p.add_argument(
        "--max-offsets-per-trigger",
        type=_cap,
        default=cap,
        metavar="RECORDS",
        help=f"cap a Kafka micro-batch (default {cap}; 0: all available). Spark splits the cap "
        "over partitions in proportion to their backlog, so partitions fed at similar rates "
        "stay together in event time; very uneven partitions can drift further apart than the "
        "allowed lateness",
    )
    if not fraud:
        p.add_argument(
            "--since",
            type=parse_duration_ms,
            default=LIVE_METRICS_SPAN_MS,
            metavar="DURATION",
            help="with --source kafka, a new work directory's metrics cover the windows that start "
            f"this long before its first start or later (default {LIVE_METRICS_SPAN_MS // 3_600_000}h, "
            "the span the live charts draw; 0: every window of the topic)",
        )
    if fraud:
        p.add_argument(
            "--alerts-topic",
            help="output topic without --output (default darooghe.fraud_alerts)",
        )
        p.add_argument(
            "--late-topic",
            help="topic of the transactions behind the watermark without --output (default "
            "darooghe.late_transactions; with --output they go to FILE.late_transactions.jsonl)",
        )
        p.add_argument(
            "--decisions-topic",
            help="topic of the REVIEW/BLOCK decisions without --output (default "
            "darooghe.fraud_decisions; with --output they go to FILE.fraud_decisions.jsonl)",
        )
        p.add_argument(
            "--profiles",
            type=Path,
            help="JSONL of {customer_id, avg_amount} instead of MongoDB customer_profiles",
        )
        p.add_argument(
            "--profiles-refresh",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="how often to check the profiles source for changes (default 30)",
        )
        p.add_argument(
            "--rules-topic",
            help="rule-set topic read before every micro-batch (default darooghe.fraud_rules with "
            "--source kafka; a file source uses the specification's rules unless given one)",
        )
        p.add_argument(
            "--rules-file",
            type=Path,
            help="JSON rule sets (a rule history or one rule set) instead of the rule-set topic",
        )


def _progress_file(settings, job: str, args, workdir: Path) -> Path | None:
    """A Kafka-to-Kafka run is the live job: it reports to <job>.progress.json, the file the
    sensor and `darooghe stream status` read. File replays and --output runs report beside it
    (<job>.<work dir>.progress.json) so they never pass for the live job."""
    from darooghe.streaming.progress import progress_path

    if args.source == "kafka" and args.output is None:
        return None
    return progress_path(settings, f"{job}.{workdir.name}")


def _source(args):
    from darooghe.streaming.sources import SourceConfig
    from darooghe.topics import VALID_TRANSACTIONS

    return SourceConfig(
        args.source,
        args.input,
        topic=args.topic or VALID_TRANSACTIONS.name,
        max_offsets_per_trigger=args.max_offsets_per_trigger or None,  # 0: no cap
    )


def _job_fields(args, settings, job) -> dict:
    """The configuration fields both jobs take from their shared arguments (`job` is the job's
    module: its name and default work directory)."""
    source = _source(args)
    workdir = (args.checkpoint or job.default_workdir(settings, source, args.output)).resolve()
    return {
        "source": source,
        "workdir": workdir,
        "output": args.output,
        "allowed_lateness_ms": args.allowed_lateness,
        "trigger_seconds": args.trigger_seconds,
        "progress_file": _progress_file(settings, job.JOB, args, workdir),
    }


def fraud_config_from_args(args, settings):
    from darooghe.streaming import fraud_job
    from darooghe.topics import FRAUD_ALERTS, FRAUD_DECISIONS, LATE_TRANSACTIONS

    return fraud_job.FraudJobConfig(
        **_job_fields(args, settings, fraud_job),
        profiles=args.profiles,
        profiles_refresh_s=args.profiles_refresh,
        alerts_topic=args.alerts_topic or FRAUD_ALERTS.name,
        late_topic=args.late_topic or LATE_TRANSACTIONS.name,
        decisions_topic=args.decisions_topic or FRAUD_DECISIONS.name,
        rules_topic=args.rules_topic,
        rules_file=args.rules_file,
    )


def metrics_config_from_args(args, settings):
    from darooghe.streaming import metrics_job

    since = args.since and args.source == "kafka"
    return metrics_job.MetricsJobConfig(
        **_job_fields(args, settings, metrics_job),
        since_ms=int(time.time() * 1000) - args.since if since else None,
    )


def run_from_args(job: str, args: argparse.Namespace, log=print) -> int:
    """Run `job` ("fraud" or "metrics") with the configuration its arguments give; 2 (a usage
    error, said on stderr) when the settings or the arguments are refused."""
    from darooghe.config import ConfigError, load_settings

    if job == "fraud":
        from darooghe.streaming.fraud_job import run_fraud_job as run

        make = fraud_config_from_args
    else:
        from darooghe.streaming.metrics_job import run_metrics_job as run

        make = metrics_config_from_args
    try:
        settings = load_settings()
        cfg = make(args, settings)
    except (ValueError, ConfigError) as exc:
        print(f"darooghe stream {job}: {exc}", file=sys.stderr)
        return 2
    return run(cfg, settings, fresh=args.fresh, log=log)


def main(job: str, doc: str) -> int:
    """The command line of a spark_apps/ script: the job's options, then `run_from_args`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_stream_arguments(parser, fraud=job == "fraud")
    return run_from_args(job, parser.parse_args())
