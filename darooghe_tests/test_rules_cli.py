"""`darooghe rules show | set` against the broker: versions published, validated, shown; and the
rule set's Dagster asset with its history table."""

from __future__ import annotations

import json

import pytest

from darooghe.cli import main
from darooghe.fraud.rule_store import load_rule_history

pytestmark = pytest.mark.integration


def test_set_publishes_the_next_version_and_show_prints_it(stack, unique_topic, capsys):
    topic = unique_topic("rules", 1)
    assert main(["rules", "show", "--topic", topic]) == 0
    assert "* v1" in capsys.readouterr().out  # an empty topic is the default history
    changes = ["velocity_max_count=3", "enabled.VELOCITY=false", "--topic", topic]
    at = "2026-03-23T10:00:00Z"
    assert main(["rules", "set", *changes, "--effective-from", at, "--comment", "test"]) == 0
    assert "published rule set v2, from 2026-03-23T10:00:00.000Z" in capsys.readouterr().out
    history = load_rule_history(stack, topic)
    assert [r.version for r in history.versions] == [1, 2]
    assert history.latest.velocity_max_count == 3 and not history.latest.enabled["VELOCITY"]

    assert main(["rules", "show", "--topic", topic, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in shown] == [1, 2] and shown[1]["comment"] == "test"
    assert main(["rules", "show", "--topic", topic, "--active", "2026-03-23T09:59:59Z"]) == 0
    assert capsys.readouterr().out.startswith("version 1,")

    for bad, message in [
        ("velocity_window_ms=-1", "velocity_window_ms = -1; expected a positive window"),
        ("enabled.SPEED=true", "unknown rule 'SPEED'"),
        ("geo_max_km=x", "'geo_max_km=x': 'x' is not a number"),
    ]:
        assert main(["rules", "set", bad, "--topic", topic]) == 2
        assert message in capsys.readouterr().err
    # A version may not apply from before the latest one's start.
    assert main(["rules", "set", "geo_max_km=60", "--effective-from", "0", "--topic", topic]) == 2
    assert "before the latest version's start" in capsys.readouterr().err
    assert len(load_rule_history(stack, topic).versions) == 2  # nothing refused was written


def test_rule_set_asset_shows_the_history(stack, monkeypatch):
    import dagster as dg

    from darooghe.fraud.ruleset import DEFAULT_HISTORY
    from darooghe_assets.assets import fraud_rules
    from darooghe_assets.resources import build_resources

    history = DEFAULT_HISTORY.with_version(
        DEFAULT_HISTORY.latest.changed(2, 5_000, geo_max_km=80.0, comment="wider")
    )
    monkeypatch.setattr(fraud_rules, "load_rule_history", lambda settings: history)
    result = dg.materialize([fraud_rules.fraud_rule_set], resources=build_resources())
    metadata = result.asset_materializations_for_node("fraud_rule_set")[0].metadata
    assert metadata["latest_version"].value == 2
    rows = [r.data for r in metadata["history"].records]
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[1]["changes"] == "geo_max_km: 50.0 -> 80.0" and rows[1]["comment"] == "wider"
