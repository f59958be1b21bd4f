"""The real-time layer in Dagster: lineage, the fraud_alerts sink, the watch sensor and restarts."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer

from darooghe.config import load_settings
from darooghe.fraud.profiles import write_profiles_file
from darooghe.streaming.progress import progress_path, write_json_atomic
from darooghe.streaming.service import HUNG_AFTER_S, JOBS, job_health
from darooghe_assets import constants as c
from darooghe_assets.assets.kafka_to_mongo import FRAUD_ALERTS, sink_asset
from darooghe_assets.checks.streaming import CHECK_NAME, evaluate_health
from darooghe_assets.definitions import defs
from darooghe_assets.jobs.streaming import restart_stream_job
from darooghe_assets.resources import KafkaResource, MongoResource, SettingsResource
from darooghe_assets.sensors.streaming import fraud_detection_watch

REPO = Path(__file__).resolve().parents[1]


def test_streaming_lineage():
    graph = defs.resolve_asset_graph()
    deps = {node.key: set(node.parent_keys) for node in graph.asset_nodes}
    assert {c.VALID_TRANSACTIONS_TOPIC, c.CUSTOMER_PROFILES} <= deps[c.FRAUD_DETECTION_JOB]
    assert deps[c.FRAUD_ALERTS_TOPIC] == {c.FRAUD_DETECTION_JOB}
    assert deps[c.LATE_TRANSACTIONS_TOPIC] == {c.FRAUD_DETECTION_JOB}
    assert deps[c.FRAUD_ALERTS_COLLECTION] == {c.FRAUD_ALERTS_TOPIC}
    assert c.VALID_TRANSACTIONS_TOPIC in deps[c.LIVE_METRICS_JOB]
    for key in c.METRICS_TOPIC_KEYS.values():
        assert deps[key] == {c.LIVE_METRICS_JOB}
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == c.FRAUD_DETECTION_JOB}
    assert CHECK_NAME in checks
    for name in ("fraud_detection_watch", "live_metrics_watch", "fraud_alerts_sink_sensor"):
        assert defs.resolve_sensor_def(name)


# --- fraud_alerts sink ------------------------------------------------------------------------------


def alert_value(
    alert_id: str, rule: str, detected_at: str, event_time="2026-03-23T14:35:22.145Z"
) -> str:
    return json.dumps(
        {
            "alert_id": alert_id,
            "rule": rule,
            "transaction_id": f"t-{alert_id}",
            "customer_id": "cust_9",
            "event_time": event_time,
            "detected_at": detected_at,
            "evidence": {"count": 6},
            "severity": "low",
        }
    )


@pytest.mark.integration
def test_fraud_alerts_sink_upserts_by_alert_id(stack, mongo_db, unique_topic):
    topic = unique_topic("alerts", 2)
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    first = [
        alert_value("a1", "VELOCITY", "2026-03-23T14:35:23.000Z"),
        alert_value("a2", "GEO_IMPOSSIBLE", "2026-03-23T14:35:24.000Z", "2026-03-23T23:59:59.999Z"),
        alert_value("a1", "VELOCITY", "2026-03-23T14:40:00.000Z"),  # redelivered later
        "not json",
    ]
    for v in first:
        producer.produce(topic, key=b"cust_9", value=v.encode())
    producer.flush(10)
    asset = sink_asset(
        FRAUD_ALERTS,
        topic,
        dg.AssetKey("test_fraud_alerts"),
        c.FRAUD_ALERTS_TOPIC,
        "fraud_alerts_test",
        dead_letter_topic=unique_topic("alerts.dlq"),
    )
    resources = {
        "kafka": KafkaResource(bootstrap_servers=stack.kafka_bootstrap),
        "mongo": MongoResource(uri=stack.mongo_uri, database=stack.mongo_db),
    }

    result = dg.materialize([asset], resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node(asset.op.name)[0].metadata
    assert meta["records_read"].value == 4 and meta["documents_written"].value == 2
    assert meta["records_dead_lettered"].value == 1
    docs = {d["_id"]: d for d in mongo_db["fraud_alerts_test"].find()}
    assert set(docs) == {"a1", "a2"}
    assert docs["a1"]["detected_at"].isoformat().startswith("2026-03-23T14:35:23")  # first wins
    assert docs["a2"]["event_date"] == "2026-03-23" and docs["a2"]["event_hour"] == 23
    assert docs["a1"]["event_time"].minute == 35

    producer.produce(
        topic,
        key=b"cust_9",
        value=alert_value("a1", "VELOCITY", "2026-03-23T15:00:00.000Z").encode(),
    )
    producer.produce(
        topic,
        key=b"cust_9",
        value=alert_value("a3", "AMOUNT_ANOMALY", "2026-03-23T15:00:00.000Z").encode(),
    )
    producer.flush(10)
    again = dg.materialize([asset], resources=resources)
    meta = again.asset_materializations_for_node(asset.op.name)[0].metadata
    assert meta["records_read"].value == 2 and meta["documents_written"].value == 1
    assert meta["collection_count"].value == 3
    assert mongo_db["fraud_alerts_test"].find_one({"_id": "a1"})["detected_at"].hour == 14


# --- the watch sensor -------------------------------------------------------------------------------


def fake_running(settings, pid: int, **progress) -> None:
    (settings.run_dir / f"{JOBS['fraud']}.pid").write_text(f"{pid}\n")
    write_json_atomic(
        progress_path(settings, JOBS["fraud"]),
        {
            "job": JOBS["fraud"],
            "pid": pid,
            "queries": {
                "fraud_detection": {
                    "status": "running",
                    "heartbeat_at": time.time(),
                    "last_progress": {
                        "batch_id": 7,
                        "input_rows_per_second": 950.0,
                        "processed_rows_per_second": 1200.0,
                        "batch_duration_ms": 800,
                        "state_rows": 1000,
                        "watermark": "2026-03-23T10:00:00.000Z",
                        "watermark_delay_s": 121.0,
                        "offsets_behind_latest": 10,
                        **progress,
                    },
                }
            },
            "counters": {"alerts": 12, "late_rows": 1},
        },
    )


def evaluate(cursor=None):
    ctx = dg.build_sensor_context(
        instance=dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"settings": SettingsResource.of(load_settings())},
    )
    return fraud_detection_watch(ctx)


def test_watch_sensor_observes_a_running_job(home):
    fake_running(home, os.getpid())
    result = evaluate()
    assert not result.run_requests
    observation = next(e for e in result.asset_events if isinstance(e, dg.AssetObservation))
    meta = {k: v.value for k, v in observation.metadata.items()}
    assert meta["status"] == "running" and meta["alive"] is True
    assert meta["input_rows_per_second"] == 950.0 and meta["batch_duration_ms"] == 800
    assert (
        meta["state_rows"] == 1000 and meta["watermark_delay_s"] == 121.0 and meta["alerts"] == 12
    )
    check = next(e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation))
    assert check.passed and check.check_name == CHECK_NAME
    # Same state on the next evaluation: nothing new to report.
    assert evaluate(result.cursor).asset_events == []


def test_watch_sensor_requests_a_restart_only_for_an_enabled_dead_job(home):
    assert evaluate().run_requests == []  # never started: stopped, not dead
    (home.run_dir / f"{JOBS['fraud']}.enabled").write_text(
        json.dumps({"args": ["--source", "kafka"]})
    )
    result = evaluate()
    assert len(result.run_requests) == 1
    assert result.run_requests[0].run_config == {
        "ops": {"restart_stream_op": {"config": {"job": "fraud"}}}
    }
    check = next(e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR


def test_watch_sensor_requests_a_restart_for_a_hung_job(home):
    fake_running(home, os.getpid())
    path = progress_path(home, JOBS["fraud"])
    doc = json.loads(path.read_text())
    doc["queries"]["fraud_detection"]["heartbeat_at"] = time.time() - HUNG_AFTER_S - 5
    write_json_atomic(path, doc)
    (home.run_dir / f"{JOBS['fraud']}.enabled").write_text(json.dumps({"args": ["--source", "kafka"]}))
    result = evaluate()
    assert len(result.run_requests) == 1 and "-hung-" in result.run_requests[0].run_key
    assert result.run_requests[0].run_config == {
        "ops": {"restart_stream_op": {"config": {"job": "fraud"}}}
    }


def test_health_check_warns_when_the_job_lags(home):
    fake_running(home, os.getpid(), offsets_behind_latest=80_000, watermark_delay_s=900.0)
    result = evaluate_health(job_health(home, "fraud"), c.FRAUD_DETECTION_JOB)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "80000 records behind" in result.description


@pytest.mark.spark
def test_background_job_start_status_death_and_sensor_restart(home, tmp_path):
    """`darooghe stream start` runs a file-mode job in the background; it ends (file mode finishes),
    so it is dead while still enabled; the sensor's restart job starts it again; stop ends it."""
    from darooghe.records import Record, write_record_file

    value = {
        "transaction_id": "t1",
        "timestamp": "2026-03-23T10:00:00.000Z",
        "customer_id": "cust_1",
        "merchant_id": "merch_1",
        "merchant_category": "retail",
        "payment_method": "pos",
        "amount": 5_000_000,
        "location": {"lat": 35.7, "lng": 51.4},
        "device_info": {},
        "status": "approved",
        "commission_type": "flat",
        "commission_amount": 100_000,
        "vat_amount": 450_000,
        "total_amount": 5_550_000,
        "customer_type": "individual",
        "risk_level": 1,
        "failure_reason": None,
    }
    write_record_file(
        [Record("cust_1", json.dumps(value), 1774260000000)], tmp_path / "in" / "a.jsonl"
    )
    write_profiles_file({"cust_1": 100_000.0}, tmp_path / "profiles.jsonl")
    out = tmp_path / "alerts.jsonl"
    args = [
        "--source",
        "file",
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(out),
        "--profiles",
        str(tmp_path / "profiles.jsonl"),
        "--checkpoint",
        str(tmp_path / "work"),
    ]
    cli = [sys.executable, "-m", "darooghe.cli", "stream"]
    started = subprocess.run(
        [*cli, "start", "fraud", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert started.returncode == 0 and "started (pid" in started.stdout, started.stderr
    try:
        deadline = time.monotonic() + 300
        while job_health(home, "fraud")["status"] != "dead":
            assert time.monotonic() < deadline, (home.logs_dir / "stream-fraud.log").read_text()[
                -3000:
            ]
            time.sleep(1)
        assert [json.loads(x)["rule"] for x in out.read_text().splitlines()] == ["AMOUNT_ANOMALY"]
        status = subprocess.run(
            [*cli, "status"], cwd=REPO, capture_output=True, text=True, check=False, timeout=60
        )
        assert "stream-fraud    DEAD" in status.stdout and status.returncode == 1

        result = evaluate()
        assert len(result.run_requests) == 1
        run = restart_stream_job.execute_in_process(
            run_config=result.run_requests[0].run_config,
            resources={"settings": SettingsResource.of(load_settings())},
        )
        assert run.success
        assert job_health(home, "fraud")["pid"] is not None or out.exists()
    finally:
        stopped = subprocess.run(
            [*cli, "stop", "fraud"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert stopped.returncode == 0
    assert job_health(home, "fraud")["status"] == "stopped"
    assert "starting:" in (home.logs_dir / "stream-fraud.log").read_text()
