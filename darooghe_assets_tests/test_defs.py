"""The whole code location loads: a broken import fails here, not in the UI."""

from __future__ import annotations

import os
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


def test_resources_follow_the_settings_and_never_write_the_environment(monkeypatch):
    from darooghe_assets.resources import build_resources

    monkeypatch.delenv("DAROOGHE_MONGO_URI", raising=False)
    monkeypatch.delenv("DAROOGHE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("DAROOGHE_MONGO_PORT", "27999")
    resources = build_resources()
    assert resources["mongo"].uri == "mongodb://127.0.0.1:27999/"
    # A process that loaded the definitions hands no endpoint to the processes it starts.
    assert "DAROOGHE_MONGO_URI" not in os.environ and "DAROOGHE_KAFKA_BOOTSTRAP" not in os.environ
    monkeypatch.setenv("DAROOGHE_MONGO_URI", "mongodb://app:secret@mongodb:27017/")
    assert isinstance(build_resources()["mongo"].uri, dg.EnvVar)  # the UI shows the name, not the secret
