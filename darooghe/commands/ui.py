"""`darooghe ui`: `dagster dev` on the configured address, with DAGSTER_HOME under DAROOGHE_HOME."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from darooghe import dagster_home
from darooghe.config import load_settings


def register(sub) -> None:
    p = sub.add_parser("ui", help="run `dagster dev` (webserver + daemon) on 127.0.0.1:$DAROOGHE_DAGSTER_PORT")
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=run)


def run(args) -> int:
    s = load_settings()
    env = dagster_home.prepare(s)
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    argv = [dagster, "dev", "-w", str(dagster_home.WORKSPACE), "-h", args.host, "-p", str(s.dagster_port)]
    print(f"Dagster UI on http://{args.host}:{s.dagster_port} (DAGSTER_HOME={env['DAGSTER_HOME']})", flush=True)
    os.execve(argv[0], argv, env)
    return 0  # not reached
