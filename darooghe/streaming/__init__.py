"""The real-time layer: Spark Structured Streaming queries and their plumbing.

- `sources`         — valid transactions from Kafka or from a directory of record files, one schema.
- `fraud_processor` — the stateful processor (transformWithState, event time, per-customer state).
- `fraud_job`       — the fraud detection query: watermark, processor, alerts sink, late-row report.
- `metrics_job`     — the live commission metrics queries.
- `sinks`           — where a micro-batch's output goes: a Kafka topic or a JSON-lines file.
- `alerts_sink`     — darooghe.fraud_alerts into the MongoDB `fraud_alerts` collection.
- `progress`        — a StreamingQueryListener writing progress files for the Dagster sensors.
- `service`         — the jobs as background services: start, stop, health, restart when dead.
- `options`         — the command-line options both jobs share (CLI and spark_apps/).
"""
