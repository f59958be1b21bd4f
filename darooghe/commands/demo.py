"""`darooghe demo`: the main job on the local stack, step by step with visible progress.

The demo drives the Dagster code location, so it runs as that location's program
(`python -m darooghe_assets.demo`, which this command becomes): the core package never imports
the code location.
"""

from __future__ import annotations

import os
import sys

from darooghe.demo import add_arguments, options_argv, options_from_args

#: The demo's program in the code location (darooghe_assets/demo.py).
DEMO_MODULE = "darooghe_assets.demo"


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the local stack and print a summary")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    argv = [sys.executable, "-m", DEMO_MODULE, *options_argv(options_from_args(args))]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # not reached
