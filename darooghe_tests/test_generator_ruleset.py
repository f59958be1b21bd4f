"""The generator's labels follow the rule set it is given, not constants of its own: with other
numbers (a longer velocity window than the geo horizon's default, a lower count, a larger
distance), its VELOCITY and GEO_IMPOSSIBLE labels are exactly what the oracle gives with them."""

from __future__ import annotations

from darooghe.fraud.reference import reference_findings
from darooghe.fraud.ruleset import DEFAULT_RULESET, RuleHistory
from darooghe.fraud.txn import Txn, parse_event_ms
from darooghe.generator.engine import Engine, Renderer
from darooghe.generator.params import GeneratorParams
from darooghe.schema import ERROR_CODES, GEO_IMPOSSIBLE, VELOCITY
from darooghe.topics import LABEL_HEADER

MIN = 60_000


def labelled_stream(rules, chunks: int = 4, chunk_ms: int = 30 * MIN):
    params = GeneratorParams(event_rate=120, customer_count=150, fraud_rate=0.06, seed=5)
    engine = Engine(params, rules=rules)
    renderer = Renderer(engine.population, LABEL_HEADER)
    start = parse_event_ms("2026-03-23T08:00:00.000Z")
    txns, labels = [], {}
    for i in range(chunks):  # several chunks: the carry must hold the rules' horizon
        batch = engine.chunk(start + i * chunk_ms, start + (i + 1) * chunk_ms)
        for value, label in zip(renderer.values(batch), batch.labels(), strict=True):
            if label in ERROR_CODES:
                continue  # invalid: the validator removes it, the rules never see it
            t = Txn.from_value(value)
            txns.append(t)
            labels[t.transaction_id] = set(label.split(",")) if label else set()
    return txns, labels


def test_labels_use_the_numbers_of_the_rule_set():
    rules = DEFAULT_RULESET.changed(
        2,
        0,
        velocity_window_ms=7 * MIN,
        velocity_max_count=4,
        geo_horizon_ms=3 * MIN,
        geo_max_km=120.0,
    )
    txns, labels = labelled_stream(rules)
    found = reference_findings(txns, rules=RuleHistory((rules,)))
    for rule in (VELOCITY, GEO_IMPOSSIBLE):
        truth = {tid for tid, rs in labels.items() if rule in rs}
        assert truth, rule
        assert truth == {tid for r, tid in found if r == rule}, rule
    default_txns, default_labels = labelled_stream(DEFAULT_RULESET)
    assert [t.transaction_id for t in default_txns] == [t.transaction_id for t in txns]
    assert default_labels != labels  # the same events, other numbers, other labels
