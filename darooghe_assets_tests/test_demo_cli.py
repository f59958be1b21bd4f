"""`darooghe demo` hands its options to the demo program of the code location unchanged."""

from __future__ import annotations

import argparse
import sys

from darooghe.cli import build_parser
from darooghe.commands import demo as demo_command
from darooghe.demo import DemoOptions, add_arguments, options_from_args


def test_darooghe_demo_runs_the_code_location_demo_with_the_same_options(monkeypatch):
    calls = []
    monkeypatch.setattr(demo_command.os, "execv", lambda path, argv: calls.append(argv))
    args = build_parser().parse_args(
        ["demo", "--history-days", "1", "--history-rate", "10", "--live-seconds", "20",
         "--live-rate", "240", "--fraud-rate", "0.1", "--seed", "3"]
    )  # fmt: skip
    args.func(args)
    (argv,) = calls
    assert argv[:3] == [sys.executable, "-m", "darooghe_assets.demo"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from_args(parser.parse_args(argv[3:])) == DemoOptions(
        history_days=1, history_rate=10.0, live_seconds=20, live_rate=240.0, fraud_rate=0.1, seed=3
    )


def test_the_demo_program_parses_the_defaults():
    from darooghe_assets import demo

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from_args(parser.parse_args([])) == DemoOptions()
    assert callable(demo.main) and demo.FINAL_ASSETS
