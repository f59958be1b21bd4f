"""DAGSTER_HOME under DAROOGHE_HOME, with a dagster.yaml written once, so runs, schedules and sensor
cursors of one home never mix with another's."""

from __future__ import annotations

import os

from darooghe.config import REPO_ROOT, Settings, load_settings

DAGSTER_YAML = """\
# Written by darooghe. Local instance: SQLite storage under this folder.
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 2
"""


def prepare(settings: Settings | None = None) -> dict[str, str]:
    """Create DAGSTER_HOME and return the environment to run Dagster processes with."""
    s = settings or load_settings()
    s.dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = s.dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    return {**os.environ, "DAGSTER_HOME": str(s.dagster_home), "DAROOGHE_HOME": str(s.home)}


WORKSPACE = REPO_ROOT / "workspace.yaml"
