"""`darooghe validate` (the ingestion validator) and `darooghe validator stop | status`.

    darooghe validate --source kafka                 run the service until Ctrl-C / SIGTERM
    darooghe validate --source kafka --detach        the same, as background process "validator"
    darooghe validate --show-one                     one message, pretty, with its verdict
    darooghe validate --input F --valid-output V --errors-output E     the file mode

Several instances share the input through the consumer group: give each its own `--instance`
(its transactional id and static group membership derive from it). Instance 0 runs as background
process "validator", instance N as "validator-N". A background instance is supervised: when it
dies, the `validator_watch` sensor starts it again (darooghe.validation.supervision) until
`darooghe validator stop`.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

from confluent_kafka import KafkaException

from darooghe import kafka_io
from darooghe.config import load_settings
from darooghe.records import RecordFileError
from darooghe.schema import ERROR_CODES
from darooghe.services.process import ManagedProcess
from darooghe.topics import ERROR_LOGS, TRANSACTIONS, VALID_TRANSACTIONS
from darooghe.validation.files import validate_file
from darooghe.validation.progress import read_progress
from darooghe.validation.service import DEFAULT_GROUP, Validator, ValidatorFenced, ValidatorOptions
from darooghe.validation.show import show_one
from darooghe.validation.supervision import disable, enable, enabled_instances, process_name

USAGE_ERROR = 2


def register(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="validate transactions: Kafka service (exactly once), --show-one, or a record file",
        description="Check every transaction against the validation rules and route it exactly once to "
        f"{VALID_TRANSACTIONS.name} or {ERROR_LOGS.name}.",
    )
    p.add_argument(
        "--source",
        choices=["kafka", "file"],
        default=None,
        help="kafka (default) or file (implied by --input)",
    )
    p.add_argument("--input", "-i", default=None, help="file mode: record file to validate")
    p.add_argument("--valid-output", default=None, help="file mode: record file of valid records")
    p.add_argument(
        "--errors-output", default=None, help="file mode: record file of error-log records"
    )
    p.add_argument("--input-topic", default=TRANSACTIONS.name, help=f"default: {TRANSACTIONS.name}")
    p.add_argument(
        "--valid-topic", default=VALID_TRANSACTIONS.name, help=f"default: {VALID_TRANSACTIONS.name}"
    )
    p.add_argument("--error-topic", default=ERROR_LOGS.name, help=f"default: {ERROR_LOGS.name}")
    p.add_argument(
        "--group", default=DEFAULT_GROUP, help=f"consumer group (default: {DEFAULT_GROUP})"
    )
    p.add_argument(
        "--instance",
        default="0",
        help="this instance's number in the group, unique per running instance (default: 0)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=ValidatorOptions.batch_size,
        help=f"records per transaction at most (default: {ValidatorOptions.batch_size})",
    )
    p.add_argument(
        "--stop-when-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop once caught up and idle this long (default: run until stopped)",
    )
    p.add_argument("--detach", action="store_true", help="run the Kafka service in the background")
    p.add_argument(
        "--show-one",
        action="store_true",
        help="print one consumed message and its verdict; commits nothing",
    )
    p.add_argument("--partition", type=int, default=None, help="--show-one: this partition")
    p.add_argument(
        "--offset", type=int, default=None, help="--show-one: this offset (with --partition)"
    )
    p.set_defaults(func=run)

    c = sub.add_parser(
        "validator", help="stop or check the background validator (validate --detach)"
    )
    c.add_argument("action", choices=["stop", "status"])
    c.add_argument("--instance", default=None, help="one instance (default: every instance)")
    c.add_argument(
        "--group", default=DEFAULT_GROUP, help=f"consumer group (default: {DEFAULT_GROUP})"
    )
    c.add_argument("--input-topic", default=TRANSACTIONS.name, help=f"default: {TRANSACTIONS.name}")
    c.set_defaults(func=control)


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    print(f"darooghe validate: {message}", file=sys.stderr)
    return status


def run(args) -> int:
    source = args.source or ("file" if args.input else "kafka")
    if source == "file":
        missing = [
            f
            for f, v in (
                ("--input", args.input),
                ("--valid-output", args.valid_output),
                ("--errors-output", args.errors_output),
            )
            if not v
        ]
        if missing:
            return _fail(f"the file mode needs {', '.join(missing)}")
        if args.detach or args.show_one:
            return _fail("--detach and --show-one apply to --source kafka only")
        return run_file(args)
    if args.input:
        return _fail("--input is the file mode; drop --source kafka or use --source file")
    if args.batch_size < 1:
        return _fail(f"--batch-size {args.batch_size} must be at least 1")
    if args.offset is not None and args.partition is None:
        return _fail("--offset needs --partition")
    if args.show_one:
        try:
            return show_one(
                load_settings(),
                args.input_topic,
                args.group,
                args.partition,
                args.offset,
                valid_topic=args.valid_topic,
                error_topic=args.error_topic,
            )
        except (kafka_io.UnknownTopicError, KafkaException, ValueError) as exc:
            return _fail(str(exc), 1)
    if args.detach:
        return detach(args)
    return run_kafka(args)


def run_file(args) -> int:
    t0 = time.monotonic()
    try:
        counts = validate_file(
            args.input,
            args.valid_output,
            args.errors_output,
            args.input_topic,
            log=lambda line: print(line, flush=True),
        )
    except (RecordFileError, OSError) as exc:
        return _fail(str(exc), 1)
    took = time.monotonic() - t0
    print(
        f"validate: {counts.summary()} in {took:.1f} s "
        f"({counts.records_in / took if took > 0 else 0:,.0f}/s); "
        f"valid -> {args.valid_output}, errors -> {args.errors_output}"
    )
    return 0


def run_kafka(args) -> int:
    options = ValidatorOptions(
        input_topic=args.input_topic,
        valid_topic=args.valid_topic,
        error_topic=args.error_topic,
        group_id=args.group,
        instance=str(args.instance),
        batch_size=args.batch_size,
        stop_when_idle=args.stop_when_idle,
    )
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: give up on the clean stop
        print(
            f"validate: {signal.Signals(signum).name}: finishing the open batch, then stopping",
            flush=True,
        )
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        Validator(options, log=lambda line: print(line, flush=True)).run(stop.is_set)
    except (kafka_io.UnknownTopicError, ValidatorFenced, KafkaException) as exc:
        return _fail(str(exc), 1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def detach(args) -> int:
    """Start this command again, without --detach, as a background process."""
    settings = load_settings()
    instance = str(args.instance)
    proc = ManagedProcess(process_name(instance), settings)
    pid = proc.pid()
    if pid is not None:
        return _fail(
            f"validator instance {instance} is already running (pid {pid}); "
            f"`darooghe validator stop --instance {instance}` first",
            1,
        )
    try:
        for topic in (args.input_topic, args.valid_topic, args.error_topic):
            kafka_io.require_topic(topic, settings)
    except (kafka_io.UnknownTopicError, KafkaException) as exc:
        return _fail(str(exc), 1)
    argv = [
        sys.executable,
        "-m",
        "darooghe.cli",
        "validate",
        "--source",
        "kafka",
        "--input-topic",
        args.input_topic,
        "--valid-topic",
        args.valid_topic,
        "--error-topic",
        args.error_topic,
        "--group",
        args.group,
        "--instance",
        instance,
        "--batch-size",
        str(args.batch_size),
    ]
    if args.stop_when_idle is not None:
        argv += ["--stop-when-idle", repr(args.stop_when_idle)]
    enable(settings, instance, argv)
    pid = proc.start(argv)
    print(
        f"validator: instance {instance} started in the background (pid {pid}); log {proc.log_file}; "
        f"stop with `darooghe validator stop`"
    )
    return 0


def _instances(settings, only: str | None) -> list[str]:
    if only is not None:
        return [str(only)]
    names = (
        sorted(p.stem for p in settings.run_dir.glob("validator*.pid"))
        if settings.run_dir.exists()
        else []
    )
    found = [("0" if n == "validator" else n.removeprefix("validator-")) for n in names]
    return sorted(set(found) | set(enabled_instances(settings))) or ["0"]


def control(args) -> int:
    settings = load_settings()
    instances = _instances(settings, args.instance)
    if args.action == "stop":
        for instance in instances:
            disable(settings, instance)  # stopped on purpose: not restarted
            proc = ManagedProcess(process_name(instance), settings)
            if proc.stop():
                print(f"validator {instance}: stopped; log {proc.log_file}")
            else:
                print(f"validator {instance}: not running")
        return 0
    running = 0
    enabled = set(enabled_instances(settings))
    for instance in instances:
        proc = ManagedProcess(process_name(instance), settings)
        pid = proc.pid()
        running += pid is not None
        if pid:
            state = f"running (pid {pid})"
        elif instance in enabled:
            state = "not running (DEAD: enabled, the validator_watch sensor restarts it)"
        else:
            state = "not running"
        print(f"validator {instance}: {state}, log {proc.log_file}")
    now_ms = time.time() * 1000
    for report in read_progress(settings, args.group):
        if args.instance is not None and report.get("instance") != str(args.instance):
            continue
        age = (now_ms - report.get("updated_at_ms", 0)) / 1000
        by_code = report.get("by_code", {})
        codes = ", ".join(f"{code} {by_code.get(code, 0)}" for code in ERROR_CODES)
        print(
            f"  instance {report.get('instance')} ({report.get('state')}, updated {age:.0f} s ago): "
            f"in {report.get('records_in')} = valid {report.get('valid')} + errors {report.get('errors')} "
            f"({codes}); {report.get('rate_per_s')}/s, lag {report.get('lag')}, "
            f"transactions {report.get('transactions_committed')} committed / "
            f"{report.get('transactions_aborted')} aborted"
        )
    try:
        lag = kafka_io.group_lag(args.input_topic, args.group, settings)
        print(
            f"  group {args.group} on {args.input_topic}: lag {sum(lag.values())} "
            f"(by partition {json.dumps(lag)})"
        )
    except (kafka_io.UnknownTopicError, KafkaException) as exc:
        print(f"  group lag unavailable: {exc}")
    return 0 if running else 1
