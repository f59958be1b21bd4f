"""Fraud detection in plain Python.

- `rules`      — the three rules' logic (predicates, evidence, severity); their numbers are data:
- `ruleset`    — the versioned rule sets (thresholds, switches, decision scores) and their history,
                 the one source of the numbers for the detector, the oracle and the generator's
                 labeller; `rule_store` keeps them in Kafka, `rule_edits` parses `rules set` input.
- `geo`        — the haversine distance (scalar and numpy), the one definition.
- `alerts`     — the alert JSON (deterministic alert_id) the streaming job publishes.
- `decisions`  — a REVIEW/BLOCK decision per alerted transaction, scored with the rule set.
- `window`     — the incremental per-customer evaluator the Spark stateful processor runs.
- `reference`  — an independent batch evaluator over a full sorted event list (the test oracle).
- `quality`    — precision, recall, FPR against the generator's labels and agreement with the oracle.
- `profiles`   — customers' historical averages (MongoDB `customer_profiles` or a JSONL file).
"""
