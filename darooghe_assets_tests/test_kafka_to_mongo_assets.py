"""Sink assets and their sensors, on the real test broker and FerretDB.

The sensors and sinks are built by the same factories as the real ones, pointed at fresh topics, so
the shared test stack's real topics are left alone.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest
from confluent_kafka import Producer

from darooghe import topics
from darooghe.kafka_io import producer_config
from darooghe.schema import format_timestamp
from darooghe_assets import constants as c
from darooghe_assets.assets.kafka_to_mongo import (
    ERROR_SUMMARY,
    METRIC_SINK_KEYS,
    error_summary,
    live_metric_sinks,
    metric_kind,
    sink_asset,
)
from darooghe_assets.resources import KafkaResource, MongoResource
from darooghe_assets.sensors.kafka_to_mongo import (
    error_logs_sink_sensor,
    kafka_sink_sensor,
    live_metrics_sink_sensor,
)
from darooghe_tests.metric_values import T0, volume_value


def _produce(settings, topic: str, values: list[dict]) -> None:
    producer = Producer(producer_config(settings))
    for value in values:
        producer.produce(topic, value=json.dumps(value).encode())
    assert producer.flush(30) == 0


def _volume(minute: int) -> dict:
    return volume_value(minute, metric_id=f"m{minute}")


def _kafka(settings) -> KafkaResource:
    return KafkaResource(bootstrap_servers=settings.kafka_bootstrap)


def _check(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.mark.integration
def test_a_metric_sink_dead_letters_what_it_cannot_store_and_its_check_fails(
    stack, unique_topic, scratch_db
):
    topic, dlq = unique_topic("test.asset.poison"), unique_topic("test.asset.dlq")
    collection = "poison_" + topic.rsplit(".", 1)[1]
    asset = sink_asset(
        metric_kind(topics.METRICS_CATEGORY_VOLUME.name),
        topic,
        dg.AssetKey(["test", "poison"]),
        dg.AssetKey(["test", "poison_topic"]),
        collection,
        dead_letter_topic=dlq,
    )
    resources = {
        "kafka": _kafka(stack),
        "mongo": MongoResource(uri=stack.mongo_uri, database=scratch_db.name),
    }
    _produce(stack, topic, [_volume(0)])
    clean = dg.materialize([asset], resources=resources)
    assert clean.success and _check(clean).passed

    # A window end far beyond any datetime stopped the sink for good (ValueError, not a skip).
    _produce(stack, topic, [{**_volume(1), "window_end": 10**20}, _volume(2)])
    result = dg.materialize([asset], resources=resources)
    assert result.success
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert (meta["records_read"].value, meta["records_stored"].value) == (2, 1)
    assert meta["records_dead_lettered"].value == 1 and meta["collection_count"].value == 2
    check = _check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert dlq in check.description and "offset 1" in check.description
    # The check stays failed while the dead letter exists, though the next run adds none.
    rerun = dg.materialize([asset], resources=resources)
    assert not _check(rerun).passed and _check(rerun).metadata["dead_letters_total"].value == 1


def test_sinks_and_sensors_are_wired_to_the_real_topics():
    assert [a.key for a in live_metric_sinks] == list(METRIC_SINK_KEYS.values())
    for topic, asset in zip(topics.METRICS_TOPICS, live_metric_sinks):
        assert set(asset.asset_deps[asset.key]) == {c.METRICS_TOPIC_KEYS[topic.name]}
        assert asset.group_names_by_key[asset.key] == c.GROUP_SINKS
    assert error_summary.key == c.ERROR_SUMMARY_COLLECTION
    assert set(error_summary.asset_deps[error_summary.key]) == {c.ERROR_LOGS_TOPIC}
    assert live_metrics_sink_sensor.default_status == dg.DefaultSensorStatus.RUNNING

    def targeted(sensor, assets):
        return sensor.targets[0].job_def.selection.resolve(assets)

    assert targeted(live_metrics_sink_sensor, live_metric_sinks) == set(METRIC_SINK_KEYS.values())
    assert targeted(error_logs_sink_sensor, [error_summary]) == {c.ERROR_SUMMARY_COLLECTION}


@pytest.mark.integration
def test_sensor_requests_a_sink_run_only_when_a_topic_end_moves(stack, unique_topic):
    busy, quiet = unique_topic("test.sensor.busy", 2), unique_topic("test.sensor.quiet", 1)
    keys = {busy: dg.AssetKey(["test", "busy"]), quiet: dg.AssetKey(["test", "quiet"])}
    sensor = kafka_sink_sensor("test_sink_sensor", keys)

    def evaluate(cursor):
        context = dg.build_sensor_context(cursor=cursor, resources={"kafka": _kafka(stack)})
        return sensor(context)

    first = evaluate(None)
    assert not first.run_requests and "no new records" in first.skip_reason.skip_message
    cursor = first.cursor
    assert json.loads(cursor) == {busy: {"0": 0, "1": 0}, quiet: {"0": 0}}

    _produce(stack, busy, [_volume(m) for m in range(3)])
    moved = evaluate(cursor)
    assert [r.asset_selection for r in moved.run_requests] == [[keys[busy]]]
    assert sum(json.loads(moved.cursor)[busy].values()) == 3
    assert moved.run_requests[0].run_key.startswith("test_sink_sensor:")

    again = evaluate(moved.cursor)
    assert not again.run_requests and again.cursor == moved.cursor


@pytest.mark.integration
def test_sensor_skips_topics_not_created_yet_naming_them(stack):
    sensor = kafka_sink_sensor("test_missing_sensor", {"test.never-created": dg.AssetKey("x")})
    result = sensor(dg.build_sensor_context(resources={"kafka": _kafka(stack)}))
    assert not result.run_requests
    assert "topics not created yet: test.never-created" in result.skip_reason.skip_message


@pytest.mark.integration
def test_metric_sink_asset_materialises_and_a_rerun_adds_nothing(stack, unique_topic, scratch_db):
    topic = unique_topic("test.asset.volume", 1)
    collection = "live_volume_" + topic.rsplit(".", 1)[1]
    asset = sink_asset(
        metric_kind(topics.METRICS_CATEGORY_VOLUME.name),
        topic,
        dg.AssetKey(["test", "volume"]),
        dg.AssetKey(["test", "volume_topic"]),
        collection,
    )
    resources = {
        "kafka": _kafka(stack),
        "mongo": MongoResource(uri=stack.mongo_uri, database=scratch_db.name),
    }
    _produce(stack, topic, [_volume(m) for m in range(4)])

    def run() -> dict:
        result = dg.materialize([asset], resources=resources)
        assert result.success
        return result.get_asset_materialization_events()[0].materialization.metadata

    first = run()
    assert (first["records_read"].value, first["collection_count"].value) == (4, 4)
    assert first["next_offsets"].value == {"0": 4}
    second = run()
    assert (second["records_read"].value, second["collection_count"].value) == (0, 4)


@pytest.mark.integration
def test_error_summary_asset_materialises_the_same_counts_twice(stack, unique_topic, scratch_db):
    topic = unique_topic("test.asset.errors", 2)
    collection = "error_summary_" + topic.rsplit(".", 1)[1]
    asset = sink_asset(
        ERROR_SUMMARY,
        topic,
        dg.AssetKey(["test", "errors"]),
        dg.AssetKey(["test", "errors_topic"]),
        collection,
    )
    resources = {
        "kafka": _kafka(stack),
        "mongo": MongoResource(uri=stack.mongo_uri, database=scratch_db.name),
    }
    _produce(
        stack,
        topic,
        [
            {
                "transaction_id": None,
                "error_codes": ["ERR_SCHEMA"],
                "source": {"timestamp": format_timestamp(T0)},
            },
            {
                "transaction_id": "t1",
                "error_codes": ["ERR_AMOUNT", "ERR_DEVICE"],
                "source": {"timestamp": format_timestamp(T0)},
            },
        ],
    )
    for records_read in (2, 0):  # the second run has nothing new to count
        result = dg.materialize([asset], resources=resources)
        assert result.success
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert (meta["records_read"].value, meta["collection_count"].value) == (records_read, 3)
        counts = {d["code"]: d["count"] for d in scratch_db[collection].find()}
        assert counts == {"ERR_SCHEMA": 1, "ERR_AMOUNT": 1, "ERR_DEVICE": 1}
