"""Metrics of the project's own jobs for the exporter: streaming queries, the validator, alerts.

The streaming jobs and the validator already write a progress file after every micro-batch or
transaction (darooghe.streaming.progress, darooghe.validation.progress); the exporter turns those
files into series at scrape time, so no job needs an HTTP server of its own and a dead job shows
as a stale heartbeat, not as a missing target. Detection latency comes from the alerts themselves:
a tailer reads `darooghe.fraud_alerts` (read_committed, no group) and observes, per alert,
detected_at - event_time (how late the rule fired after the transaction happened) and the alert
record's Kafka timestamp - detected_at (how long the sink took to publish it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from darooghe.config import Settings
from darooghe.streaming.progress import STALE_AFTER_S, read_progress

#: Seconds; the rules' latency threshold (infra/prometheus/rules.yml) sits on one of these bounds.
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 120, 300, 900)


def _iso_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()  # 3.11 reads a trailing Z
    except ValueError:
        return None


def stream_families(s: Settings, now: float | None = None) -> Iterator:
    """One series per streaming query from `$DAROOGHE_HOME/metrics/stream-*.progress.json`."""
    now = time.time() if now is None else now
    q = ["stream", "query"]
    up = GaugeMetricFamily("darooghe_stream_up", "1 while the query runs and its heartbeat is fresh", labels=q)
    age = GaugeMetricFamily("darooghe_stream_heartbeat_age_seconds", "seconds since the query last reported", labels=q)
    rows = CounterMetricFamily("darooghe_stream_input_rows", "rows read by the query's current run", labels=q)
    in_rate = GaugeMetricFamily("darooghe_stream_input_rows_per_second", "input rate of the last batch", labels=q)
    proc_rate = GaugeMetricFamily(
        "darooghe_stream_processed_rows_per_second", "processing rate of the last batch", labels=q
    )
    duration = GaugeMetricFamily("darooghe_stream_batch_duration_seconds", "duration of the last batch", labels=q)
    state_rows = GaugeMetricFamily("darooghe_stream_state_rows", "rows in the query's state store", labels=q)
    state_mem = GaugeMetricFamily("darooghe_stream_state_memory_bytes", "memory of the state store", labels=q)
    wm = GaugeMetricFamily("darooghe_stream_watermark_timestamp_seconds", "event-time watermark", labels=q)
    wm_delay = GaugeMetricFamily(
        "darooghe_stream_watermark_delay_seconds", "wall clock minus the watermark", labels=q
    )
    behind = GaugeMetricFamily(
        "darooghe_stream_offsets_behind_latest",
        "Kafka offsets the query trails the latest ones by (the most behind partition)",
        labels=q,
    )
    j = ["stream"]
    alerts = CounterMetricFamily("darooghe_stream_alerts", "alerts emitted, by rule", labels=["stream", "rule"])
    late = CounterMetricFamily(
        "darooghe_stream_late_rows",
        "transactions behind the watermark published to darooghe.late_transactions (judged by "
        "AMOUNT_ANOMALY only)",
        labels=j,
    )
    batches = CounterMetricFamily("darooghe_stream_batches", "micro-batches completed", labels=q)
    for path in sorted(s.metrics_dir.glob("stream-*.progress.json")) if s.metrics_dir.exists() else []:
        doc = read_progress(path) or {}
        job = doc.get("job") or path.name.split(".")[0]
        for name, entry in sorted((doc.get("queries") or {}).items()):
            key = [job, name]
            heartbeat = entry.get("heartbeat_at") or 0
            fresh = now - heartbeat < STALE_AFTER_S
            up.add_metric(key, 1 if entry.get("status") == "running" and fresh else 0)
            age.add_metric(key, max(0.0, now - heartbeat))
            rows.add_metric(key, entry.get("input_rows_total") or 0)
            last = entry.get("last_progress") or {}
            in_rate.add_metric(key, last.get("input_rows_per_second") or 0)
            proc_rate.add_metric(key, last.get("processed_rows_per_second") or 0)
            if last.get("batch_duration_ms") is not None:
                duration.add_metric(key, last["batch_duration_ms"] / 1000)
            state_rows.add_metric(key, last.get("state_rows") or 0)
            state_mem.add_metric(key, last.get("state_memory_bytes") or 0)
            wm_s = _iso_s(last.get("watermark"))
            if wm_s is not None and wm_s > 0:
                wm.add_metric(key, wm_s)
                wm_delay.add_metric(key, max(0.0, now - wm_s))
            if last.get("offsets_behind_latest") is not None:
                behind.add_metric(key, last["offsets_behind_latest"])
        counters = doc.get("counters") or {}
        for rule, n in sorted((counters.get("alerts_by_rule") or {}).items()):
            alerts.add_metric([job, rule], n)
        if "late_rows" in counters:
            late.add_metric([job], counters["late_rows"])
        done = counters.get("batches")
        if isinstance(done, dict):  # a job of several queries counts each one
            for name, n in sorted(done.items()):
                batches.add_metric([job, name], n)
        elif done is not None:
            for name in list(doc.get("queries") or {})[:1]:
                batches.add_metric([job, name], done)
    yield from (up, age, rows, in_rate, proc_rate, duration, state_rows, state_mem, wm, wm_delay, behind)
    yield from (alerts, late, batches)


def validator_families(s: Settings, now: float | None = None) -> Iterator:
    """One series per validator instance from its progress file (counters of its current run)."""
    now = time.time() if now is None else now
    i = ["instance"]
    up = GaugeMetricFamily("darooghe_validator_up", "1 while the instance runs and reports", labels=i)
    records = CounterMetricFamily("darooghe_validator_records", "records routed by this run", labels=i)
    valid = CounterMetricFamily("darooghe_validator_valid", "records routed to valid_transactions", labels=i)
    errors = CounterMetricFamily("darooghe_validator_errors", "records routed to error_logs", labels=i)
    by_code = CounterMetricFamily("darooghe_validator_error_codes", "error codes raised", labels=["instance", "code"])
    txns = CounterMetricFamily(
        "darooghe_validator_transactions", "Kafka transactions, by outcome", labels=["instance", "outcome"]
    )
    lag = GaugeMetricFamily("darooghe_validator_lag", "records behind, from the consumer's own position", labels=i)
    folder: Path = s.metrics_dir / "validator"
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        key = [str(doc.get("instance", path.stem))]
        fresh = now - (doc.get("updated_at_ms") or 0) / 1000 < STALE_AFTER_S
        up.add_metric(key, 1 if doc.get("state") == "running" and fresh else 0)
        records.add_metric(key, doc.get("records_in") or 0)
        valid.add_metric(key, doc.get("valid") or 0)
        errors.add_metric(key, doc.get("errors") or 0)
        for code, n in sorted((doc.get("by_code") or {}).items()):
            by_code.add_metric([*key, code], n)
        txns.add_metric([*key, "committed"], doc.get("transactions_committed") or 0)
        txns.add_metric([*key, "aborted"], doc.get("transactions_aborted") or 0)
        if doc.get("lag") is not None:
            lag.add_metric(key, doc["lag"])
    yield from (up, records, valid, errors, by_code, txns, lag)


class AlertLatencyTailer:
    """Reads new alerts in a daemon thread and observes their latencies into two histograms."""

    def __init__(self, s: Settings, registry, topic: str | None = None) -> None:
        from darooghe import topics

        self.settings = s
        self.topic = topic or topics.FRAUD_ALERTS.name
        self.detection = Histogram(
            "darooghe_fraud_detection_latency_seconds",
            "alert detected_at minus the transaction's event time",
            ["rule"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.publish = Histogram(
            "darooghe_fraud_alert_publish_latency_seconds",
            "alert record's Kafka timestamp minus its detected_at",
            ["rule"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.unreadable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-latency", daemon=True)

    def start(self) -> AlertLatencyTailer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def observe(self, value: bytes | None, kafka_ts_ms: int | None) -> None:
        try:
            alert = json.loads(value or b"")
            event_s, detected_s = _iso_s(alert["event_time"]), _iso_s(alert["detected_at"])
            rule = str(alert["rule"])
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1
            return
        if event_s is None or detected_s is None:
            self.unreadable += 1
            return
        self.detection.labels(rule).observe(max(0.0, detected_s - event_s))
        if kafka_ts_ms and kafka_ts_ms > 0:
            self.publish.labels(rule).observe(max(0.0, kafka_ts_ms / 1000 - detected_s))

    def _run(self) -> None:
        from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

        from darooghe import kafka_io

        while not self._stop.is_set():
            consumer = None
            try:
                n = kafka_io.require_topic(self.topic, self.settings)
                # Only alerts from now on: a histogram of the history would say nothing about today.
                consumer = Consumer(kafka_io.consumer_config(None, self.settings))
                consumer.assign([TopicPartition(self.topic, p, OFFSET_END) for p in range(n)])
                while not self._stop.is_set():
                    for m in consumer.consume(1000, timeout=0.5):
                        if m.error() is None:
                            self.observe(m.value(), m.timestamp()[1])
            except (KafkaException, LookupError, OSError):
                self._stop.wait(5)  # broker down or topic missing: try again, never crash the exporter
            finally:
                if consumer is not None:
                    consumer.close()
