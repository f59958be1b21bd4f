"""Prometheus metrics for the pipeline: Kafka consumer lag, Spark executor CPU/memory, JVM GC time.

One exporter (`darooghe monitor`, default 127.0.0.1:9108/metrics) so a laptop needs one scrape
target. Values are read at scrape time, never cached:
- consumer lag: every consumer group's committed offsets against the topics' end offsets (the
  validator's group among them);
- Spark: the REST API of each running long-lived Spark app (registered under
  `$DAROOGHE_HOME/metrics/spark-apps` by `darooghe.spark.spark_session(..., ui=True)`): per-executor
  memory used and its maximum, JVM heap peak, cumulative task time, GC time, and the app's executor
  CPU time summed over its stages. Spark also serves its own Prometheus endpoint on the same UI
  (`/metrics/executors/prometheus`), which a cluster Prometheus can scrape directly.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import psutil
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from darooghe import kafka_io
from darooghe.config import Settings, load_settings


def consumer_lags(settings: Settings) -> list[tuple[str, str, int, int]]:
    """(group, topic, partition, lag) for every committed offset of every consumer group."""
    admin = kafka_io.admin_client(settings)
    groups = admin.list_consumer_groups(request_timeout=10).result()
    out = []
    consumer = None
    ends: dict[str, dict[int, kafka_io.PartitionOffsets]] = {}  # topic -> its partitions' offsets
    try:
        for g in groups.valid:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g.group_id)])
            for result in futures.values():
                committed = result.result().topic_partitions
                for tp in committed:
                    offset = kafka_io.committed_offset(tp)
                    if offset is None:
                        continue
                    if consumer is None:
                        from confluent_kafka import Consumer

                        consumer = Consumer(kafka_io.consumer_config("darooghe-monitor", settings))
                    if tp.topic not in ends:
                        ends[tp.topic] = kafka_io.partition_offsets(consumer, tp.topic, timeout=5)
                    end = ends[tp.topic][tp.partition]
                    lag = kafka_io.offsets_behind(end.high, offset)
                    out.append((g.group_id, tp.topic, tp.partition, lag))
    finally:
        if consumer is not None:
            consumer.close()
    return out


def registered_spark_apps(settings: Settings) -> list[dict]:
    """The registered Spark apps whose driver still runs; a dead driver's file is removed (each
    scrape would otherwise wait on its closed UI: 2.4 s seen with a few stale test apps)."""
    folder = settings.metrics_dir / "spark-apps"
    apps = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            app = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        pid = app.get("pid")
        if isinstance(pid, int) and not psutil.pid_exists(pid):
            path.unlink(missing_ok=True)
            continue
        apps.append(app)
    return apps


def _get_json(url: str, timeout: float = 3.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


class MonotonicStageCpu:
    """Executor CPU seconds of an app as a true counter.

    Spark's REST API lists only the stages it still retains (spark.ui.retainedStages), so the sum
    over them drops when old stages are evicted. This keeps each stage's last value and adds the
    evicted ones to a carried total; a new app id (a restarted job) starts the counter again,
    which Prometheus' rate() reads as a reset.
    """

    def __init__(self) -> None:
        self._apps: dict[str, tuple[str, dict[tuple, float], float]] = {}

    def update(self, app: str, app_id: str, stages: list[dict]) -> float:
        known_id, seen, retired = self._apps.get(app, (app_id, {}, 0.0))
        if known_id != app_id:
            seen, retired = {}, 0.0
        current = {
            (st.get("stageId"), st.get("attemptId")): st.get("executorCpuTime", 0) / 1e9 for st in stages
        }
        retired += sum(v for k, v in seen.items() if k not in current)
        merged = {k: max(v, seen.get(k, 0.0)) for k, v in current.items()}
        self._apps[app] = (app_id, merged, retired)
        return retired + sum(merged.values())


class PipelineCollector(Collector):
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.stage_cpu = MonotonicStageCpu()

    def collect(self) -> Iterator:
        from darooghe.monitoring_jobs import stream_families, validator_families

        up = GaugeMetricFamily("darooghe_exporter_scrape_ok", "1 when the source answered", labels=["source"])
        yield from self._kafka(up)
        yield from self._spark(up)
        yield from stream_families(self.settings)
        yield from validator_families(self.settings)
        yield up

    def _kafka(self, up: GaugeMetricFamily) -> Iterator:
        lag = GaugeMetricFamily(
            "darooghe_kafka_consumer_lag", "records behind the end offset", labels=["group", "topic", "partition"]
        )
        total = GaugeMetricFamily("darooghe_kafka_consumer_lag_sum", "lag summed over partitions", labels=["group", "topic"])
        try:
            sums: dict[tuple[str, str], int] = {}
            for group, topic, partition, value in consumer_lags(self.settings):
                lag.add_metric([group, topic, str(partition)], value)
                sums[(group, topic)] = sums.get((group, topic), 0) + value
            for (group, topic), value in sums.items():
                total.add_metric([group, topic], value)
            up.add_metric(["kafka"], 1)
        except (KafkaException, Exception):  # noqa: BLE001 - a down broker is a metric, not a crash
            up.add_metric(["kafka"], 0)
        yield lag
        yield total

    def _spark(self, up: GaugeMetricFamily) -> Iterator:
        labels = ["app", "executor"]
        mem_used = GaugeMetricFamily("darooghe_spark_executor_memory_used_bytes", "storage memory used", labels=labels)
        mem_max = GaugeMetricFamily("darooghe_spark_executor_memory_max_bytes", "storage memory available", labels=labels)
        heap = GaugeMetricFamily("darooghe_spark_executor_jvm_heap_peak_bytes", "peak JVM heap", labels=labels)
        rss = GaugeMetricFamily("darooghe_spark_executor_rss_peak_bytes", "peak process-tree RSS", labels=labels)
        gc = CounterMetricFamily("darooghe_spark_executor_gc_seconds", "JVM GC time", labels=labels)
        task = CounterMetricFamily("darooghe_spark_executor_task_seconds", "task run time", labels=labels)
        cpu = CounterMetricFamily("darooghe_spark_app_executor_cpu_seconds", "executor CPU time over all stages", labels=["app"])
        for app in registered_spark_apps(self.settings):
            name, base = app["app_name"], f"{app['ui'].rstrip('/')}/api/v1/applications/{app['app_id']}"
            try:
                for ex in _get_json(f"{base}/executors"):
                    key = [name, ex["id"]]
                    mem_used.add_metric(key, ex.get("memoryUsed", 0))
                    mem_max.add_metric(key, ex.get("maxMemory", 0))
                    peaks = ex.get("peakMemoryMetrics") or {}
                    heap.add_metric(key, peaks.get("JVMHeapMemory", 0))
                    rss.add_metric(key, peaks.get("ProcessTreeJVMRSSMemory", 0))
                    gc.add_metric(key, ex.get("totalGCTime", 0) / 1000)
                    task.add_metric(key, ex.get("totalDuration", 0) / 1000)
                stages = _get_json(f"{base}/stages")
                cpu.add_metric([name], self.stage_cpu.update(name, app["app_id"], stages))
                up.add_metric([f"spark:{name}"], 1)
            except (OSError, ValueError, KeyError):
                up.add_metric([f"spark:{name}"], 0)
        yield from (mem_used, mem_max, heap, rss, gc, task, cpu)


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    from prometheus_client import start_http_server
    from prometheus_client.core import REGISTRY

    from darooghe.monitoring_jobs import AlertLatencyTailer

    s = settings or load_settings()
    REGISTRY.register(PipelineCollector(s))
    AlertLatencyTailer(s, REGISTRY).start()
    start_http_server(port, addr=host)
    print(f"Prometheus metrics on http://{host}:{port}/metrics", flush=True)
    while True:
        time.sleep(3600)


def render_once(settings: Settings | None = None) -> str:
    from prometheus_client import generate_latest
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings))
    return generate_latest(registry).decode()
