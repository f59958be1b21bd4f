"""End to end: a shortened `darooghe demo` on a stack of its own, then the counts must add up.

Runs the real CLI in a subprocess with its own home and ports, so it exercises exactly what
`make demo` does (services, backfill, validator, batch, streaming, live phase, sinks, charts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pymongo import MongoClient

from darooghe import kafka_io, topics
from darooghe.config import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(1500)]

PORTS = {
    "DAROOGHE_KAFKA_PORT": os.environ.get("DAROOGHE_TEST_E2E_KAFKA_PORT", "19192"),
    "DAROOGHE_KAFKA_CONTROLLER_PORT": os.environ.get("DAROOGHE_TEST_E2E_CONTROLLER_PORT", "19193"),
    "DAROOGHE_MONGO_PORT": os.environ.get("DAROOGHE_TEST_E2E_MONGO_PORT", "27217"),
    "DAROOGHE_POSTGRES_PORT": os.environ.get("DAROOGHE_TEST_E2E_POSTGRES_PORT", "15532"),
    "DAROOGHE_MONITOR_PORT": os.environ.get("DAROOGHE_TEST_E2E_MONITOR_PORT", "19208"),
    "DAROOGHE_PROMETHEUS_PORT": os.environ.get("DAROOGHE_TEST_E2E_PROMETHEUS_PORT", "19190"),
}


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("demo-home")
    env = {**os.environ, "DAROOGHE_HOME": str(home), "DAROOGHE_MONGO_DB": "darooghe", **PORTS}
    for endpoint in ("DAROOGHE_KAFKA_BOOTSTRAP", "DAROOGHE_MONGO_URI"):  # derived from the ports
        env.pop(endpoint, None)
    env.pop("DAGSTER_HOME", None)
    yield env
    subprocess.run([sys.executable, "-m", "darooghe.cli", "services", "down"], env=env, timeout=300, check=False)


def test_short_demo_produces_collections_charts_and_consistent_counts(demo_env, monkeypatch):
    argv = [sys.executable, "-m", "darooghe.cli", "demo", "--history-days", "1", "--history-rate", "10",
            "--live-seconds", "20", "--live-rate", "240"]
    done = subprocess.run(argv, env=demo_env, capture_output=True, text=True, timeout=1400, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "Darooghe demo summary" in out

    for name, value in demo_env.items():
        if name.startswith("DAROOGHE_"):
            monkeypatch.setenv(name, value)
    s = load_settings()
    produced = kafka_io.count_records(topics.TRANSACTIONS.name, s)
    valid = sum(1 for _ in kafka_io.consume_all(topics.VALID_TRANSACTIONS.name, s))
    errors = list(kafka_io.consume_all(topics.ERROR_LOGS.name, s))
    assert produced > 0
    assert valid + len(errors) == produced  # every record in exactly one output topic
    assert f"valid: {valid}" in out

    with MongoClient(s.mongo_uri) as client:
        db = client[s.mongo_db]
        for name in ("transactions", "fraud_alerts", "commission_by_category", "customer_profiles", "customer_segments"):
            assert db[name].count_documents({}) > 0, f"collection {name} is empty"
        alerts = sum(1 for _ in kafka_io.consume_all(topics.FRAUD_ALERTS.name, s))
        distinct = {json.loads(r.value)["alert_id"] for r in kafka_io.consume_all(topics.FRAUD_ALERTS.name, s)}
        assert db.fraud_alerts.count_documents({}) == len(distinct) <= alerts
        codes = sum(d["count"] for d in db.error_summary.find({}, {"count": 1}))
        assert codes == sum(len(json.loads(r.value)["error_codes"]) for r in errors)

    pngs = sorted(p.name for p in s.charts_dir.glob("*.png"))
    assert len(pngs) >= 8, pngs
    assert (s.charts_dir / "dashboard.html").stat().st_size > 100_000
