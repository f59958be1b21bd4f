"""The `darooghe` command: one entry point whose subcommands live in darooghe/commands/.

Each command module exposes `register(subparsers)`, which adds its parser and sets `func`, a
callable taking the parsed arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import signal
import sys

from darooghe.commands import (
    demo,
    generate,
    monitor,
    rules,
    services,
    stream,
    topics,
    ui,
    validate,
)

COMMANDS = [services, topics, ui, demo, generate, stream, rules, monitor, validate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darooghe", description="Darooghe real-time payment data pipeline"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # `kill -USR1 <pid>` writes every thread's Python stack to stderr (the service's log): how a
    # long-running job that stalls shows where (the fault suite sends it before giving up).
    with contextlib.suppress(AttributeError, OSError, ValueError):  # stderr without a file (tests)
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
