"""`darooghe generate` (the transaction generator) and `darooghe generator stop | status`.

Every SPEC parameter has a flag and an environment variable (flag first, then the variable, then
the default); a value out of range exits with status 2 and names the parameter, the value and the
range. `--detach` runs the same command as the background process "generator" (PID file under
$DAROOGHE_HOME/run, log under $DAROOGHE_HOME/logs), which `darooghe generator stop` ends cleanly
(SIGTERM: the producer is flushed).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import KafkaException, Producer

from darooghe import kafka_io
from darooghe.config import load_settings
from darooghe.generator import params as gp
from darooghe.generator.engine import Engine, Renderer
from darooghe.generator.publishers import FilePublisher, KafkaPublisher
from darooghe.generator.runner import WindowError, parse_end, run_history, run_live
from darooghe.merchant_reference import side_file
from darooghe.schema import format_epoch_ms
from darooghe.services.process import ManagedProcess
from darooghe.topics import BY_NAME, LABEL_HEADER, MAX_HISTORY_DAYS, MERCHANTS, TRANSACTIONS

PROCESS_NAME = "generator"
USAGE_ERROR = 2


def register(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="generate transactions (history window and/or live) into Kafka or a record file",
        description="The transaction generator (darooghe_pulse): a seeded non-homogeneous Poisson "
        "process of payments with injected fraud and invalid events. Each parameter flag falls "
        "back to its environment variable, then to its default.",
    )
    p.add_argument("--mode", choices=["history", "live", "both"], default="live",
                   help="history: a past window; live: real time from now; both: history up to now, "
                   "then live (default: live)")
    p.add_argument("--end", default=None,
                   help="history: end of the window, ISO-8601 (default: now truncated to the hour; "
                   "give the same --end for byte-identical output)")
    p.add_argument("--duration", type=float, default=None,
                   help="live: seconds to run (default: until Ctrl-C / SIGTERM)")
    p.add_argument("--sink", choices=["kafka", "file"], default="kafka", help="default: kafka")
    p.add_argument("--output", "-o", default=None, help="record file to write (--sink file)")
    p.add_argument("--topic", default=TRANSACTIONS.name, help=f"default: {TRANSACTIONS.name}")
    p.add_argument("--merchants-topic", default=MERCHANTS.name,
                   help="compacted topic for the merchant register (--sink kafka; the file publisher "
                   f"writes OUTPUT's .merchants side file instead); default: {MERCHANTS.name}")
    p.add_argument("--detach", action="store_true",
                   help=f"run in the background as process {PROCESS_NAME!r} (log under $DAROOGHE_HOME/logs)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    for spec in gp.SPECS:
        extra = f" (max {MAX_HISTORY_DAYS})" if spec.field == "days" else ""
        p.add_argument(
            spec.flag, dest=spec.field, default=None, metavar=spec.kind.__name__.upper(),
            help=f"{spec.help}{extra}; env {spec.name}, default {spec.default}, range {spec.range_text()}",
        )
    p.set_defaults(func=run)

    g = sub.add_parser("generator", help="stop or check the background generator (generate --detach)")
    g.add_argument("action", choices=["stop", "status"])
    g.set_defaults(func=control)


def _fail(message: str, status: int = USAGE_ERROR) -> int:
    print(f"darooghe generate: {message}", file=sys.stderr)
    return status


def run(args) -> int:
    try:
        params = gp.from_sources({spec.field: getattr(args, spec.field) for spec in gp.SPECS})
        if args.mode == "history":
            end_ms = parse_end(args.end)
        elif args.end is not None:
            raise WindowError(f"--end applies to --mode history only, not {args.mode}")
    except (gp.ParameterError, WindowError) as exc:
        return _fail(str(exc))
    if args.duration is not None and args.duration <= 0:
        return _fail(f"--duration {args.duration:g} must be a positive number of seconds")
    if args.sink == "file" and not args.output:
        return _fail("--sink file needs --output FILE")
    if args.detach:
        return detach(args, params)

    settings = load_settings()
    report = None if args.quiet else (lambda text: print(text, flush=True))
    engine = Engine(params, live_prior=args.mode == "live")
    renderer = Renderer(engine.population, LABEL_HEADER)
    try:
        if args.sink == "file":
            publisher = FilePublisher(args.output, renderer)
            target = f"{args.output} (merchants: {side_file(args.output)})"
        else:
            for name in (args.topic, args.merchants_topic):
                if name in BY_NAME:
                    kafka_io.ensure_topics([BY_NAME[name]], settings)
                else:
                    kafka_io.require_topic(name, settings)
            publisher = KafkaPublisher(
                args.topic, renderer,
                lambda **overrides: Producer(kafka_io.producer_config(settings, **overrides)),
                LABEL_HEADER, args.merchants_topic,
            )
            target = (f"topic {args.topic} (merchants: {args.merchants_topic}) "
                      f"at {settings.kafka_bootstrap}")
    except (kafka_io.UnknownTopicError, KafkaException, OSError) as exc:
        return _fail(str(exc), 1)

    stop = threading.Event()
    previous = _on_sigterm(stop)
    try:
        summaries = []
        if args.mode in ("history", "both"):
            if args.mode == "both":
                end_ms = _now_ms()
            start_ms = end_ms - params.days * 86_400_000
            if report:
                report(f"generate: history {format_epoch_ms(start_ms)} .. "
                       f"{format_epoch_ms(end_ms)} (seed {params.seed}, "
                       f"{params.event_rate:g} events/min) -> {target}")
            summaries.append(run_history(engine, publisher, start_ms, end_ms, report, stop))
        if args.mode in ("live", "both") and not stop.is_set():
            if report:
                until = f"for {args.duration:g} s" if args.duration else "until stopped"
                report(f"generate: live from now {until} (seed {params.seed}, "
                       f"{params.event_rate:g} events/min) -> {target}")
            start = summaries[0].window_end_ms if summaries else None
            summaries.append(run_live(engine, publisher, start, args.duration, stop, report))
        publisher.close()  # flushes: the producer's queue is delivered, the file is complete
    except KeyboardInterrupt:
        publisher.close()  # Ctrl-C during the history: what was produced is delivered
        print("generate: interrupted during the history; the window is incomplete", file=sys.stderr)
        return 130
    except (KafkaException, OSError) as exc:
        return _fail(str(exc), 1)
    finally:
        _restore_sigterm(previous)
        if isinstance(publisher, FilePublisher):
            with contextlib.suppress(OSError):
                publisher.close()  # idempotent; after an error, at least stop the writer thread
    for summary in summaries:
        print(f"generate: {summary.describe()}", flush=True)
    return 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _on_sigterm(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def detach(args, params: gp.GeneratorParams) -> int:
    """Start this command again, without --detach, as the background process 'generator'."""
    settings = load_settings()
    proc = ManagedProcess(PROCESS_NAME, settings)
    pid = proc.pid()
    if pid is not None:
        return _fail(f"the generator is already running (pid {pid}); `darooghe generator stop` first", 1)
    argv = [sys.executable, "-m", "darooghe.cli", "generate", "--mode", args.mode,
            "--sink", args.sink, "--topic", args.topic, "--merchants-topic", args.merchants_topic]
    if args.output:
        argv += ["--output", str(Path(args.output).resolve())]
    if args.duration is not None:
        argv += ["--duration", repr(args.duration)]
    if args.end is not None:
        argv += ["--end", args.end]
    for spec in gp.SPECS:
        argv += [spec.flag, str(getattr(params, spec.field))]
    pid = proc.start(argv)
    print(f"generator: started in the background (pid {pid}); log {proc.log_file}; "
          f"stop with `darooghe generator stop`")
    return 0


def control(args) -> int:
    proc = ManagedProcess(PROCESS_NAME, load_settings())
    if args.action == "stop":
        if proc.stop():
            print(f"generator: stopped; log {proc.log_file}")
        else:
            print("generator: not running")
        return 0
    pid = proc.pid()
    if pid is None:
        print(f"generator: not running (log {proc.log_file})")
        return 1
    print(f"generator: running (pid {pid}), log {proc.log_file}; last lines:")
    print(proc.tail_log(5))
    return 0
