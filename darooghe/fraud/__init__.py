"""Fraud detection rules of SPEC section 4, in plain Python.

- `rules`     — the three rules (thresholds, predicates, evidence, severity): the one definition.
- `alerts`    — the alert JSON (deterministic alert_id) the streaming job publishes.
- `window`    — the incremental per-customer evaluator the Spark stateful processor runs.
- `reference` — an independent batch evaluator over a full sorted event list (the test oracle).
- `profiles`  — customers' historical averages (MongoDB `customer_profiles` or a JSONL file).
"""
