"""The real-time layer: Spark Structured Streaming queries and their plumbing.

- `sources`         — valid transactions from Kafka or from a directory of record files, one schema.
- `fraud_processor` — the stateful processor (transformWithState, event time, per-customer state).
- `fraud_job`       — the fraud detection query: watermark, processor, outputs, late rows.
- `metrics_job`     — the live commission metrics queries.
- `publishers`      — where a micro-batch's output goes: a Kafka topic (transactional for the
                      alerts and decisions) or a JSON-lines file.
- `metric_contract` — what a live-metric value is: its id and the top-merchants ranking.
- `progress`        — a StreamingQueryListener writing progress files for the Dagster sensors.
- `service`         — the jobs as background services: start, stop, health, restart when dead.
- `options`         — the command-line options both jobs share (CLI and spark_apps/).
"""
