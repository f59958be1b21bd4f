"""The whole code location loads: a broken import fails here, not in the UI."""

from __future__ import annotations

import ast
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
    before = dict(os.environ)
    resources = build_resources()
    assert resources["mongo"].uri == "mongodb://127.0.0.1:27999/"
    # A process that loaded the definitions hands no endpoint to the processes it starts.
    assert "DAROOGHE_MONGO_URI" not in os.environ and "DAROOGHE_KAFKA_BOOTSTRAP" not in os.environ
    assert dict(os.environ) == before  # nor a Spark variable (set only when a run starts Spark)
    monkeypatch.setenv("DAROOGHE_MONGO_URI", "mongodb://app:secret@mongodb:27017/")
    assert isinstance(build_resources()["mongo"].uri, dg.EnvVar)  # the UI shows the name, not the secret


def test_settings_resource_gives_its_roots_and_the_environment_for_the_rest(monkeypatch, tmp_path):
    from darooghe_assets.resources import SettingsResource

    monkeypatch.setenv("DAROOGHE_CLOCK_SKEW_MS", "1234")
    s = SettingsResource(home=str(tmp_path / "home"), build=str(tmp_path / "build")).get()
    assert (s.home, s.lake_dir) == (tmp_path / "home", tmp_path / "home" / "lake")
    assert s.build == tmp_path / "build" and s.clock_skew_ms == 1234


def _module_definitions(package: str) -> dict[str, list]:
    """module name -> the definitions it holds at module level (lists of them flattened)."""
    import importlib
    import pkgutil

    from darooghe_assets.jobs.batch import batch_refresh_job

    kinds = (
        dg.AssetsDefinition,
        dg.AssetSpec,
        dg.AssetChecksDefinition,
        dg.JobDefinition,
        type(batch_refresh_job),  # an unresolved asset job
        dg.ScheduleDefinition,
        dg.SensorDefinition,
    )
    pkg = importlib.import_module(package)
    names = (
        [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]
        if hasattr(pkg, "__path__")
        else [package]
    )
    found = {}
    for name in names:
        module = importlib.import_module(name)
        tree = ast.parse(Path(module.__file__).read_text())
        own = [  # names the module binds itself (not imports)
            t.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        ] + [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        items = []
        for value in (vars(module)[n] for n in own):
            values = value if type(value) in (list, tuple) else [value]
            items += [v for v in values if isinstance(v, kinds)]
        found[name] = items
    return found


def test_definitions_list_every_definition_of_the_packages_each_in_the_module_of_its_kind():
    """definitions.py names what it registers; nothing defined in the packages is left out, and
    each package holds only its kind (no sensor among the jobs, no job among the sensors)."""
    from darooghe_assets import definitions as d

    listed = {
        "darooghe_assets.assets": d.ASSETS,
        "darooghe_assets.checks": d.ASSET_CHECKS,
        "darooghe_assets.jobs": d.JOBS,
        "darooghe_assets.schedules": d.SCHEDULES,
        "darooghe_assets.sensors": d.SENSORS,
    }
    for package, registered in listed.items():
        for module, items in _module_definitions(package).items():
            for item in items:
                assert any(item is r for r in registered), f"{module}: {item!r} is not in {package}"
    assert len(defs.resolve_asset_graph().get_all_asset_keys()) == 55
    assert sorted(s.name for s in defs.sensors) == [
        "charts_automation_sensor",
        "error_logs_sink_sensor",
        "fraud_alerts_sink_sensor",
        "fraud_detection_watch",
        "lake_growth",
        "live_metrics_sink_sensor",
        "live_metrics_watch",
        "validator_watch",
    ]
    assert sorted(s.name for s in defs.schedules) == ["batch_daily", "storage_hourly"]
    assert sorted(j.name for j in defs.jobs) == [
        "batch_refresh",
        "restart_stream_job",
        "restart_validator_job",
        "storage_hourly",
    ]
