"""historical_backfill on the real test broker: metadata, topic contents, and never the same window
twice. The ledger lives in a fresh DAROOGHE_HOME per test; the topic is a fresh one.
"""

from __future__ import annotations

import dagster as dg
import pytest

from darooghe import kafka_io
from darooghe.topics import LABEL_HEADER
from darooghe_assets import constants as c
from darooghe_assets.assets.generator import historical_backfill
from darooghe_assets.definitions import defs
from darooghe_assets.resources import KafkaResource, SettingsResource

END = "2026-03-10T00:00:00Z"


def _materialize(stack, config: dict, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [historical_backfill],
        resources={
            "kafka": KafkaResource(bootstrap_servers=stack.kafka_bootstrap),
            "settings": SettingsResource.of(stack),
        },
        run_config={"ops": {"historical_backfill": {"config": config}}},
        raise_on_error=raise_on_error,
    )


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = result.asset_materializations_for_node("historical_backfill")
    return {k: v.value for k, v in event.metadata.items()}


def _topic_count(stack, topic: str) -> int:
    """Records in the topic (a backfill writes in transactions: offsets also count markers)."""
    return sum(1 for _ in kafka_io.consume_all(topic, stack))


def test_backfill_is_upstream_of_the_transactions_topic():
    graph = defs.resolve_asset_graph()
    assert c.HISTORICAL_BACKFILL in graph.get_all_asset_keys()
    node = next(n for n in graph.asset_nodes if n.key == c.TRANSACTIONS_TOPIC)
    assert {c.HISTORICAL_BACKFILL, dg.AssetKey("live_generator")} <= set(node.parent_keys)
    backfill = next(n for n in graph.asset_nodes if n.key == c.HISTORICAL_BACKFILL)
    assert backfill.group_name == c.GROUP_INGEST and "kafka" in backfill.kinds


@pytest.mark.integration
def test_backfill_writes_its_window_once(stack, unique_topic, tmp_path, monkeypatch):
    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path))
    topic = unique_topic("backfill", 2)
    config = {"seed": 5, "days": 1, "event_rate": 10, "end": END, "topic": topic}

    first = _metadata(_materialize(stack, config))
    assert first["written"] is True
    assert first["seed"] == 5 and first["topic"] == topic
    assert first["window_start"] == "2026-03-09T00:00:00.000Z" and first["window_end"] == "2026-03-10T00:00:00.000Z"
    count = first["count"]
    assert 12_000 < count < 17_000 and _topic_count(stack, topic) == count
    labels = first["label_counts"]
    assert set(labels) == {"VELOCITY", "GEO_IMPOSSIBLE", "AMOUNT_ANOMALY", "ERR_AMOUNT", "ERR_TIME",
                           "ERR_DEVICE", "ERR_SCHEMA"}
    records = list(kafka_io.consume_all(topic, stack))
    assert sum(1 for r in records if r.headers.get(LABEL_HEADER) == "ERR_TIME") == labels["ERR_TIME"]

    # the same window again, or one overlapping it: skipped, nothing written
    for overlapping in (config, {**config, "end": "2026-03-10T12:00:00Z", "seed": 6}):
        again = _metadata(_materialize(stack, overlapping))
        assert again["written"] is False and again["count"] == 0
        assert "overlaps" in again["skipped_reason"]
        assert _topic_count(stack, topic) == count

    # the day before is a new window
    before = _metadata(_materialize(stack, {**config, "end": "2026-03-09T00:00:00Z"}))
    assert before["written"] is True
    assert _topic_count(stack, topic) == count + before["count"]


@pytest.mark.integration
def test_backfill_refuses_out_of_range_parameters(stack, unique_topic, tmp_path, monkeypatch):
    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path))
    topic = unique_topic("backfill", 1)
    result = _materialize(stack, {"event_rate": 5000, "days": 1, "end": END, "topic": topic},
                          raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "EVENT_RATE=5000" in str(failure.event_specific_data.error) or "EVENT_RATE=5000" in str(
        failure.event_specific_data
    )
    assert _topic_count(stack, topic) == 0
