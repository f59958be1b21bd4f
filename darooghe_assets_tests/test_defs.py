"""The whole code location loads: a broken import fails here, not in the UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from darooghe import topics
from darooghe_assets import constants as c
from darooghe_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]


def test_definitions_load_and_resolve():
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    assert c.TRANSACTIONS_TOPIC in keys
    assert dg.AssetKey("live_generator") in keys
    for name in ("kafka", "mongo", "pyspark"):
        assert name in defs.resources


def test_topic_assets_are_kafka_kind():
    nodes = {s.key: s for s in defs.resolve_asset_graph().asset_nodes}
    for topic in (topics.TRANSACTIONS, topics.LATE_TRANSACTIONS):
        assert "kafka" in nodes[c.topic_key(topic)].kinds, topic.name


def test_dagster_cli_validates_workspace():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
