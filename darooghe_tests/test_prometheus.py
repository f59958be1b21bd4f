"""Prometheus for real: the rules pass promtool, and the local server scrapes the pipeline's jobs."""

from __future__ import annotations

import subprocess
import time

import pytest

from darooghe.config import load_settings
from darooghe.monitoring import MonotonicStageCpu
from darooghe.services import prometheus


def test_alert_rules_pass_promtool_unit_tests():
    tool = prometheus.binary(load_settings(), "promtool")
    checked = subprocess.run(
        [str(tool), "check", "rules", str(prometheus.RULES_FILE)],
        capture_output=True, text=True, check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [str(tool), "test", "rules", prometheus.RULES_TEST_FILE.name],
        cwd=prometheus.RULES_TEST_FILE.parent,
        check=False,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_compose_scrape_config_is_the_generated_one():
    expected = prometheus.render(
        prometheus.scrape_config(load_settings(), compose=True), prometheus.COMPOSE_HEADER
    )
    assert prometheus.COMPOSE_CONFIG.read_text() == expected, (
        "infra/docker/prometheus.yml is stale: regenerate it with "
        "`python -m darooghe.services.prometheus --compose > infra/docker/prometheus.yml`"
    )


def test_generated_config_passes_promtool(tmp_path):
    s = load_settings()
    path = tmp_path / "prometheus.yml"
    path.write_text(prometheus.render(prometheus.scrape_config(s)))
    checked = subprocess.run(
        [str(prometheus.binary(s, "promtool")), "check", "config", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_executor_cpu_counter_never_goes_down_when_stages_are_evicted():
    cpu = MonotonicStageCpu()
    stage = lambda i, ns: {"stageId": i, "attemptId": 0, "executorCpuTime": ns}
    assert cpu.update("app", "id-1", [stage(1, 2e9), stage(2, 1e9)]) == 3.0
    # stage 1 evicted from the REST API, stage 2 grew, stage 3 new
    assert cpu.update("app", "id-1", [stage(2, 1.5e9), stage(3, 1e9)]) == 4.5
    assert cpu.update("app", "id-1", []) == 4.5
    assert cpu.update("app", "id-2", [stage(1, 1e9)]) == 1.0  # a new run of the app: a reset


def test_late_rows_exposed_are_the_late_transactions_the_fraud_job_published(tmp_path):
    """The fraud job's late counter counts what its late sink wrote (a batch re-run into the file
    sink writes and counts nothing), and the exporter exposes that count."""
    import dataclasses
    import json
    from types import SimpleNamespace

    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.registry import CollectorRegistry

    from darooghe.fraud.columnar import Rows, judge
    from darooghe.monitoring_jobs import stream_families
    from darooghe.streaming.fraud_job import (
        JOB,
        QUERY,
        FraudBatchWriter,
        FraudCounters,
        FraudJobConfig,
    )
    from darooghe.streaming.fraud_processor import output_frame
    from darooghe.streaming.progress import ProgressRecorder, progress_path
    from darooghe.streaming.publishers import JsonLinesPublisher
    from darooghe.streaming.sources import SourceConfig
    from darooghe_tests.fraud_streams import MIN, SEC, T0, txn

    settings = dataclasses.replace(load_settings(), home=tmp_path)
    (tmp_path / "in").mkdir()
    cfg = FraudJobConfig(
        SourceConfig("file", tmp_path / "in"), tmp_path / "work", output=tmp_path / "alerts.jsonl"
    )
    counters = FraudCounters()
    writer = FraudBatchWriter(
        cfg,
        JsonLinesPublisher(cfg.output, cfg.workdir / "file_sink.json"),
        JsonLinesPublisher(cfg.late_output, cfg.workdir / "late_sink.json"),
        SimpleNamespace(refresh=lambda: None),
        counters,
        log=lambda m: None,
    )

    def batch(*txns):
        result = judge(Rows.empty(), Rows.from_txns(list(txns)), T0 + MIN, {"cust_1": 10_000.0})
        rows = list(output_frame(result, T0 + MIN).itertuples(index=False))
        return SimpleNamespace(collect=lambda: rows)

    first = batch(txn("a", 0, amount=10**7), txn("b", SEC))
    writer(first, 0)
    writer(first, 0)  # re-run after a failure: the file sink has it already
    writer(batch(txn("c", 2 * SEC), txn("on_time", 2 * MIN)), 1)
    published = [json.loads(x) for x in cfg.late_output.read_text().splitlines()]
    assert [(v["batch_id"], v["transaction_id"]) for v in published] == [
        (0, "a"),
        (0, "b"),
        (1, "c"),
    ]
    assert counters.late == 3 and counters.by_rule == {"AMOUNT_ANOMALY": 2}

    ProgressRecorder(progress_path(settings, JOB), JOB, counters.as_dict).update(QUERY)
    class StreamCollector:  # the exporter's streaming part, without its Kafka and Spark sources
        def collect(self):
            return stream_families(settings)

    registry = CollectorRegistry()
    registry.register(StreamCollector())
    text = generate_latest(registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("darooghe_stream_late_rows_total", (("stream", JOB),))] == 3


def _wait_for(s, promql: str, timeout: float = 90.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = prometheus.query(s, promql)
        if result or time.monotonic() > deadline:
            return result
        time.sleep(2)


@pytest.mark.integration
def test_services_up_runs_prometheus_scraping_the_exporter(stack):
    rows = {r.name: r for r in __import__("darooghe.services.stack", fromlist=["status"]).status(stack)}
    assert rows["prometheus"].healthy and rows["monitor"].healthy, rows
    up = _wait_for(stack, 'up{job="darooghe"} == 1')
    assert up, "Prometheus never scraped the exporter"
    assert _wait_for(stack, 'darooghe_exporter_scrape_ok{source="kafka"}')
    rules = prometheus.query(stack, "ALERTS")  # the rule files loaded: any firing alert is a vector
    assert isinstance(rules, list)
    import json
    import urllib.request

    with urllib.request.urlopen(prometheus.api_url(stack, "/api/v1/rules"), timeout=5) as resp:
        groups = json.load(resp)["data"]["groups"]
    names = {r["name"] for g in groups for r in g["rules"]}
    assert {"DaroogheStreamDown", "DaroogheDetectionLatencyHigh", "DaroogheErrorRateSpike"} <= names


@pytest.mark.integration
@pytest.mark.spark
@pytest.mark.timeout(600)
def test_fraud_job_started_the_production_way_is_scraped_with_lag_cpu_gc_and_latency(
    stack, unique_topic, tmp_path
):
    """`darooghe stream fraud` in the background, as `make demo` and the sensors start it: its
    progress, its Spark executors and the latency of its alerts all reach Prometheus."""
    import uuid

    from darooghe.fraud.txn import Txn
    from darooghe.kafka_io import produce_records
    from darooghe.streaming.service import start_job, stop_job
    from darooghe_tests.fraud_streams import MASHHAD, TEHRAN, record_of

    topic = unique_topic("prom-fraud", 2)
    profiles = tmp_path / "profiles.jsonl"
    profiles.write_text("")
    app = "darooghe-fraud-detection"
    start_job(
        "fraud",
        ["--topic", topic, "--profiles", str(profiles), "--checkpoint", str(tmp_path / "ck"), "--fresh"],
        stack,
    )
    try:
        assert _wait_for(stack, f'up{{job="spark-driver", app="{app}"}} == 1', timeout=240), (
            "Prometheus never scraped the fraud job's driver"
        )
        now = int(time.time() * 1000)
        run = uuid.uuid4().hex[:6]
        txns = []
        for i in range(20):  # twenty customers, each in Tehran and 40 s later in Mashhad
            cust = f"cust_prom_{run}_{i}"
            txns.append(Txn(f"t_{run}_{i}_a", cust, now - 60_000, *TEHRAN, 100_000))
            txns.append(Txn(f"t_{run}_{i}_b", cust, now - 20_000, *MASHHAD, 100_000))
        produce_records(topic, [record_of(t) for t in txns], stack)
        q = '{stream="stream-fraud"}'
        assert _wait_for(stack, f"darooghe_stream_offsets_behind_latest{q}", timeout=180)
        assert _wait_for(stack, f'darooghe_stream_input_rows_total{q} >= {len(txns)}', timeout=180)
        assert _wait_for(stack, f'darooghe_spark_app_executor_cpu_seconds_total{{app="{app}"}} > 0')
        assert _wait_for(stack, f'darooghe_spark_executor_memory_used_bytes{{app="{app}"}}')
        assert _wait_for(stack, f'darooghe_spark_executor_gc_seconds_total{{app="{app}"}}')
        count = _wait_for(
            stack, 'darooghe_fraud_detection_latency_seconds_count{rule="GEO_IMPOSSIBLE"} >= 20', timeout=180
        )
        assert count, "the exporter saw no GEO_IMPOSSIBLE alert latency"
        # Spark's own endpoint too: the driver's JVM metrics through its PrometheusServlet
        assert _wait_for(stack, f'{{job="spark-driver", app="{app}", __name__=~".*jvm.*heap.*"}}')
    finally:
        stop_job("fraud", stack)
