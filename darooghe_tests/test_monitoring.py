"""The Prometheus exporter reports real consumer lag and the Spark app's executor metrics."""

from __future__ import annotations

import os

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from darooghe import kafka_io, monitoring
from darooghe.records import Record


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.mark.integration
def test_consumer_lag_is_end_minus_committed(stack, unique_topic):
    topic = unique_topic("lag")
    kafka_io.produce_records(topic, [Record(None, str(i), 1_700_000_000_000 + i) for i in range(10)], stack)
    group = f"lag-{topic}"
    c = Consumer(kafka_io.consumer_config(group, stack))
    c.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    c.close()
    samples = _samples(monitoring.render_once(stack))
    assert samples[("darooghe_kafka_consumer_lag", (("group", group), ("partition", "0"), ("topic", topic)))] == 6
    assert samples[("darooghe_kafka_consumer_lag_sum", (("group", group), ("topic", topic)))] == 6
    assert samples[("darooghe_exporter_scrape_ok", (("source", "kafka"),))] == 1


@pytest.mark.integration
@pytest.mark.spark
def test_spark_executor_metrics_from_the_registered_app(spark, stack):
    spark.range(200_000).selectExpr("sum(id)").collect()  # some executor work to report
    samples = _samples(monitoring.render_once(stack))
    app = ("app", "darooghe-tests")
    assert samples[("darooghe_exporter_scrape_ok", (("source", "spark:darooghe-tests"),))] == 1
    assert samples[("darooghe_spark_executor_memory_max_bytes", (app, ("executor", "driver")))] > 0
    assert ("darooghe_spark_executor_gc_seconds_total", (app, ("executor", "driver"))) in samples
    assert samples[("darooghe_spark_app_executor_cpu_seconds_total", (app,))] > 0


def test_a_dead_drivers_registration_is_dropped(tmp_path, monkeypatch):
    import json
    import subprocess
    import sys

    from darooghe.config import load_settings

    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path))
    settings = load_settings()
    folder = settings.metrics_dir / "spark-apps"
    folder.mkdir(parents=True)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (folder / "gone.json").write_text(json.dumps({"app_name": "gone", "ui": "http://127.0.0.1:1", "pid": int(gone.stdout)}))
    (folder / "alive.json").write_text(json.dumps({"app_name": "alive", "ui": "http://127.0.0.1:1", "pid": os.getpid()}))
    assert [a["app_name"] for a in monitoring.registered_spark_apps(settings)] == ["alive"]
    assert not (folder / "gone.json").exists()
