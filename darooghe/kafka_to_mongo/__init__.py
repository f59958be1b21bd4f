"""The Kafka -> MongoDB stage: what the real-time layer publishes, stored for charts and checks.

- `loop`          — the loop every sink runs: bounded chunks, offsets saved after each chunk's
                    writes, dead letters for records that cannot be stored.
- `live_metrics`  — the four live-metric topics, upserted by metric_id (rankings per window).
- `error_summary` — the error log counted per code and hour, counts kept with the offsets.
- `fraud_alerts`, `fraud_decisions` — one document per alert / per transaction (`events`).
- `dead_letters`  — darooghe.sink_dead_letters: records a sink refused, as they were.
- `lock`          — one run at a time per sink (a lease in MongoDB).

FerretDB has no transactions, so a write to a collection and a write of consumed offsets can never
be one atomic step; every sink is therefore idempotent when a chunk is read twice. Records read =
records stored + records dead-lettered, for every run; a sink's asset check fails while any record
of it sits in the dead-letter topic.
"""
