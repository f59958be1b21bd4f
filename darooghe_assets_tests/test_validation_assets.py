"""The validator in the Dagster graph: its AssetSpecs and lineage, the `validator_watch` sensor
(observations of lag and throughput, with build_sensor_context) and the error-rate asset check,
against the real test broker."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import dagster as dg
import pytest
from confluent_kafka import Producer

from darooghe.kafka_io import producer_config
from darooghe.validation.error_rates import compare_rates
from darooghe.validation.samples import samples
from darooghe.validation.service import Validator, ValidatorOptions
from darooghe_assets import constants as c
from darooghe_assets.checks.validation import ErrorRateCheckConfig, error_rates_near_expected
from darooghe_assets.definitions import defs
from darooghe_assets.resources import KafkaResource, SettingsResource
from darooghe_assets.sensors.validation import validator_watch_sensor


def test_validator_and_its_topics_are_in_the_lineage():
    graph = defs.resolve_asset_graph()
    nodes = {n.key: n for n in graph.asset_nodes}
    assert c.TRANSACTIONS_TOPIC in nodes[c.VALIDATOR].parent_keys
    for key in (c.VALID_TRANSACTIONS_TOPIC, c.ERROR_LOGS_TOPIC):
        assert nodes[key].parent_keys == {c.VALIDATOR}
        assert "kafka" in nodes[key].kinds
    assert defs.resolve_sensor_def("validator_watch").name == "validator_watch"
    check_keys = {k for n in graph.asset_nodes for k in n.check_keys}
    assert dg.AssetCheckKey(c.ERROR_LOGS_TOPIC, "error_rates_near_expected") in check_keys


def test_rate_comparison_flags_only_what_is_far_on_both_tests():
    expected = {"ERR_AMOUNT": 0.01, "ERR_TIME": 0.01, "ERR_DEVICE": 0.01, "ERR_SCHEMA": 0.0}
    rates = {
        r.code: r
        for r in compare_rates(
            {"ERR_AMOUNT": 100, "ERR_TIME": 300, "ERR_DEVICE": 104, "ERR_SCHEMA": 1},
            10_000,
            expected,
        )
    }
    assert not rates["ERR_AMOUNT"].flagged  # exactly as expected
    assert rates["ERR_TIME"].flagged and rates["ERR_TIME"].z > 4  # three times too many
    assert not rates["ERR_DEVICE"].flagged  # noise
    assert not rates["ERR_SCHEMA"].flagged  # one in 10,000 where none expected: immaterial
    small = {r.code: r for r in compare_rates({"ERR_TIME": 3}, 100, expected)}
    assert not small["ERR_TIME"].flagged  # 3% of 100 records is not evidence


@pytest.fixture()
def validated(stack, unique_topic):
    """Unique topics with 1500 records validated (20% invalid) by a validator that has stopped."""
    names = {
        "input": unique_topic("test.vassets.in", 4),
        "valid": unique_topic("test.vassets.valid", 4),
        "errors": unique_topic("test.vassets.errors", 2),
        "group": f"test-vassets-{uuid.uuid4().hex[:8]}",
    }
    batch = samples(
        1500, int(time.time() * 1000) - 15_000, invalid_share=0.2, seed=31, spacing_ms=10
    )
    _produce(stack, names["input"], batch)
    options = ValidatorOptions(
        input_topic=names["input"],
        valid_topic=names["valid"],
        error_topic=names["errors"],
        group_id=names["group"],
        stop_when_idle=1.5,
        progress_interval=1.0,
    )
    counts = Validator(options, stack, log=lambda line: None).run()
    assert counts.records_in == 1500
    return {**names, "counts": counts, "options": options}


def _produce(settings, topic, batch):
    producer = Producer(producer_config(settings))
    for s in batch:
        producer.produce(topic, s.value, s.key, timestamp=s.timestamp)
    assert producer.flush(30) == 0


def _sensor(v):
    return validator_watch_sensor(
        name="validator_watch_test",
        input_topic=v["input"],
        valid_topic=v["valid"],
        error_topic=v["errors"],
        group_id=v["group"],
    )


def _evaluate(sensor, settings, cursor=None):
    context = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={
            "kafka": KafkaResource(bootstrap_servers=settings.kafka_bootstrap),
            "settings": SettingsResource.of(settings),
        },
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    return {
        e.asset_key: {k: getattr(m, "value", m) for k, m in e.metadata.items()}
        for e in result.asset_events
    }, result.cursor


@pytest.mark.integration
def test_sensor_observes_lag_and_throughput(stack, validated):
    sensor = _sensor(validated)
    obs, cursor = _evaluate(sensor, stack)
    assert set(obs) == {c.VALIDATOR, c.VALID_TRANSACTIONS_TOPIC, c.ERROR_LOGS_TOPIC}
    v = obs[c.VALIDATOR]
    assert v["status"] == "not running" and v["instances_running"] == 0
    assert v["consumer_lag"] == 0 and v["committed_offsets"] == 1500
    counts = validated["counts"]
    assert (v["records_in"], v["valid"], v["errors"]) == (
        counts.records_in,
        counts.valid,
        counts.errors,
    )
    assert v["errors_by_code"] == counts.by_code
    assert "throughput_per_s" not in v  # needs two evaluations
    assert obs[c.VALID_TRANSACTIONS_TOPIC]["end_offsets"] >= counts.valid  # + transaction markers

    # more input and no validator: the lag shows it; then a running validator catches up
    _produce(
        stack,
        validated["input"],
        samples(400, int(time.time() * 1000) - 4000, seed=32, spacing_ms=10),
    )
    obs, cursor = _evaluate(sensor, stack, cursor)
    assert obs[c.VALIDATOR]["consumer_lag"] == 400 and obs[c.VALIDATOR]["throughput_per_s"] == 0
    assert obs[c.VALIDATOR]["status"] == "behind, not running"

    stop = threading.Event()
    running = dataclasses.replace(validated["options"], stop_when_idle=None)
    validator = Validator(running, stack, log=lambda line: None)
    thread = threading.Thread(target=validator.run, args=(stop.is_set,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while validator.counts.records_in < 400:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.5)  # one progress-file update after the catch-up
        obs, cursor = _evaluate(sensor, stack, cursor)
        v = obs[c.VALIDATOR]
        assert v["status"] == "running" and v["instances_running"] == 1
        assert v["consumer_lag"] == 0 and v["committed_offsets"] == 1900
        assert v["throughput_per_s"] > 0
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.integration
def test_error_rate_check_passes_near_and_warns_far_from_the_expected_rates(stack, validated):
    kafka = KafkaResource(bootstrap_servers=stack.kafka_bootstrap)
    counts = validated["counts"]
    actual = {code: n / counts.records_in for code, n in counts.by_code.items()}
    base = {
        "input_topic": validated["input"],
        "error_topic": validated["errors"],
        "group_id": validated["group"],
        "min_records": 500,
    }

    near = error_rates_near_expected(
        config=ErrorRateCheckConfig(**base, expected_rates=actual), kafka=kafka
    )
    assert near.passed, near.description
    assert near.metadata["window_records"].value == 1500
    assert near.metadata["error_records"].value == counts.errors

    far_rates = {**actual, "ERR_TIME": actual["ERR_TIME"] / 10}
    far = error_rates_near_expected(
        config=ErrorRateCheckConfig(**base, expected_rates=far_rates), kafka=kafka
    )
    assert not far.passed and far.severity == dg.AssetCheckSeverity.WARN
    assert far.description.startswith("ERR_TIME:")

    few = error_rates_near_expected(
        config=ErrorRateCheckConfig(**{**base, "min_records": 10_000}, expected_rates=far_rates),
        kafka=kafka,
    )
    assert few.passed and "too few to judge" in few.description

    window = error_rates_near_expected(
        config=ErrorRateCheckConfig(**base, window_records=400, expected_rates=actual), kafka=kafka
    )
    assert window.metadata["window_records"].value == 400  # 100 latest per input partition


@pytest.mark.integration
def test_watch_sensor_restarts_a_dead_background_validator(stack, validated):
    """`validate --detach` enables the instance; SIGKILL leaves it dead; the sensor requests a
    restart and the restart job starts it with the same command line; it then routes new input;
    `validator stop` disables it and the sensor asks for nothing more."""
    import os
    import signal
    import subprocess
    import sys

    from darooghe.services.process import ManagedProcess
    from darooghe.validation.progress import read_progress
    from darooghe.validation.supervision import process_name
    from darooghe_assets.jobs.validation import restart_validator_job

    instance = f"r{uuid.uuid4().hex[:6]}"
    cli = [sys.executable, "-m", "darooghe.cli"]
    detach = [
        *cli, "validate", "--source", "kafka", "--detach", "--instance", instance,
        "--input-topic", validated["input"], "--valid-topic", validated["valid"],
        "--error-topic", validated["errors"], "--group", validated["group"],
    ]  # fmt: skip
    sensor = _sensor(validated)

    def evaluate():
        context = dg.build_sensor_context(
            instance=dg.DagsterInstance.ephemeral(),
            resources={
                "kafka": KafkaResource(bootstrap_servers=stack.kafka_bootstrap),
                "settings": SettingsResource.of(stack),
            },
        )
        return sensor(context)

    proc = ManagedProcess(process_name(instance), stack)
    try:
        started = subprocess.run(detach, capture_output=True, text=True, timeout=60, check=False)
        assert started.returncode == 0, started.stderr
        first = proc.pid()
        assert first is not None and not evaluate().run_requests  # running: nothing to restart
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while proc.pid() is not None:
            assert time.monotonic() < deadline
            time.sleep(0.2)

        (request,) = evaluate().run_requests
        assert request.run_config == {
            "ops": {"restart_validator_op": {"config": {"instance": instance}}}
        }
        settings_only = {"settings": SettingsResource.of(stack)}
        assert restart_validator_job.execute_in_process(
            run_config=request.run_config, resources=settings_only
        ).success
        second = proc.pid()
        assert second is not None and second != first
        _produce(
            stack,
            validated["input"],
            samples(300, int(time.time() * 1000) - 3000, seed=33, spacing_ms=10),
        )
        deadline = time.monotonic() + 120
        while True:  # the restarted instance routes the new input
            reports = [
                r for r in read_progress(stack, validated["group"]) if r["instance"] == instance
            ]
            if reports and reports[0]["records_in"] == 300:
                break
            assert time.monotonic() < deadline, proc.tail_log(30)
            time.sleep(0.5)
    finally:
        stopped = subprocess.run(
            [*cli, "validator", "stop", "--instance", instance],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert f"validator {instance}: stopped" in stopped.stdout
    assert not evaluate().run_requests  # stopped on purpose: stays stopped
    assert (
        restart_validator_job.execute_in_process(
            run_config=request.run_config, resources=settings_only, raise_on_error=False
        ).success
        is False
    )  # no longer enabled: refused
