"""The rule set as data: validation that names the field, JSON round trip, the history's order and
`at`, and the oracle across a mid-stream change (each transaction judged by its own version)."""

from __future__ import annotations

import pytest

from darooghe.fraud.reference import reference_findings
from darooghe.fraud.ruleset import (
    APPROVE,
    BLOCK,
    DEFAULT_HISTORY,
    DEFAULT_RULESET,
    REVIEW,
    RuleHistory,
    RuleSet,
    RuleSetError,
)
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY
from darooghe_tests.fraud_streams import MASHHAD, MIN, SEC, T0, txn


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"velocity_window_ms": -120_000},
            "rule set v1: velocity_window_ms = -120000; expected a positive window in ms",
        ),
        ({"geo_horizon_ms": 0}, "geo_horizon_ms = 0; expected a positive horizon in ms"),
        (
            {"enabled": {"TELEPORT": True}},
            "expected rules among VELOCITY, GEO_IMPOSSIBLE, AMOUNT_ANOMALY (unknown: ['TELEPORT'])",
        ),
        ({"block_score": 30}, "block_score = 30; expected an integer >= review_score (40)"),
        ({"velocity_max_count": "5"}, "velocity_max_count = '5'; expected an integer >= 1"),
        ({"review_score": 25}, "review_score = 25; expected an integer above risk_level_points"),
    ],
)
def test_validation_names_the_field_the_value_and_what_is_valid(fields, message):
    if "enabled" in fields:  # the constructor keeps `enabled` as given: merge like `changed`
        fields = {"enabled": {**DEFAULT_RULESET.enabled, **fields["enabled"]}}
    with pytest.raises(RuleSetError) as err:
        RuleSet(**fields)
    assert message in str(err.value)


def test_unknown_rule_and_unknown_field():
    with pytest.raises(RuleSetError, match="unknown rule 'TELEPORT'"):
        DEFAULT_RULESET.is_enabled("TELEPORT")
    with pytest.raises(RuleSetError, match=r"unknown field\(s\) \['speed'\]"):
        RuleSet.from_dict({**DEFAULT_RULESET.to_dict(), "speed": 3})
    with pytest.raises(RuleSetError, match="not JSON"):
        RuleSet.from_json("{")


def test_json_round_trip_of_a_set_and_a_history():
    changed = DEFAULT_RULESET.changed(
        2, T0, velocity_max_count=3, enabled={VELOCITY: False}, comment="tighter"
    )
    assert RuleSet.from_json(changed.to_json()) == changed
    assert changed.enabled == {VELOCITY: False, GEO_IMPOSSIBLE: True, AMOUNT_ANOMALY: True}
    history = DEFAULT_HISTORY.with_version(changed)
    assert RuleHistory.from_json(history.to_json()) == history


def test_history_is_ordered_by_start_and_at_picks_the_active_version():
    v2 = DEFAULT_RULESET.changed(2, T0, geo_max_km=80.0)
    v3 = DEFAULT_RULESET.changed(3, T0 + 10 * MIN, geo_max_km=20.0)
    history = RuleHistory((v3, DEFAULT_RULESET, v2))  # any order in, ordered by start
    assert [r.version for r in history.versions] == [1, 2, 3]
    assert history.at(T0 - 1).version == 1
    assert history.at(T0).version == 2  # from its start on, inclusive
    assert history.at(T0 + 10 * MIN - 1).version == 2
    assert history.at(T0 + 10 * MIN).version == 3 and history.latest is v3
    assert history.horizon_ms == 5 * MIN
    with pytest.raises(RuleSetError, match="not newer than the latest"):
        history.with_version(DEFAULT_RULESET.changed(3, T0 + 20 * MIN))
    with pytest.raises(RuleSetError, match="before the latest version's start"):
        history.with_version(DEFAULT_RULESET.changed(4, T0))
    with pytest.raises(RuleSetError, match="duplicate versions"):
        RuleHistory((DEFAULT_RULESET, DEFAULT_RULESET.changed(1, T0)))
    with pytest.raises(RuleSetError, match="not in the order of their effective times"):
        RuleHistory((DEFAULT_RULESET.changed(2, T0 + MIN), DEFAULT_RULESET.changed(3, T0)))


def test_decisions_from_severities_and_risk_level():
    r = DEFAULT_RULESET
    assert r.decide(r.score([], 5)) == APPROVE  # risk level alone never reaches REVIEW
    assert (r.score(["medium"], 1), r.decide(r.score(["medium"], 1))) == (55, REVIEW)
    assert r.decide(r.score(["high"], 1)) == BLOCK


def test_oracle_switches_exactly_at_the_effective_time():
    """v2 from T0 + 10 min: VELOCITY from more than 3 in 2 min (not 5), GEO_IMPOSSIBLE off, the
    amount factor 4 (not 10). Each transaction is judged by the version of its own event time."""
    start = T0 + 10 * MIN
    v2 = DEFAULT_RULESET.changed(
        2, start, velocity_max_count=3, enabled={GEO_IMPOSSIBLE: False}, amount_factor=4.0
    )
    history = DEFAULT_HISTORY.with_version(v2)
    burst = [txn(f"a{i}", i * SEC) for i in range(5)]  # 5 in 4 s: never more than 5
    travel = [txn("h1", 5 * MIN), txn("h2", 6 * MIN, where=MASHHAD)]  # 1 min, ~740 km
    # b0..b3 at 9:56..9:59 (v1), b4 at 10:00 exactly (v2); all Tehran, within 5 min of h2.
    straddle = [txn(f"b{i}", 10 * MIN - 4 * SEC + i * SEC) for i in range(5)]
    after = [txn("g1", 20 * MIN), txn("g2", 21 * MIN, where=MASHHAD)]
    amounts = [txn("m1", 3 * MIN, amount=500_000), txn("m2", 12 * MIN, amount=500_000)]
    events = [*burst, *travel, *straddle, *after, *amounts]
    found = reference_findings(events, {"cust_1": 100_000.0}, rules=history)

    def fired(rule):
        return {tid for r, tid in found if r == rule}

    assert straddle[-1].event_ms == start
    # b3 is the 4th in its window one second before the change: v1 lets it pass; b4 (5th) fires.
    assert fired(VELOCITY) == {"b4"}
    # Within 5 min of Mashhad (h2): b0..b3 under v1 fire, b4 under v2 (geo off) does not, nor g2.
    assert fired(GEO_IMPOSSIBLE) == {"h2", "b0", "b1", "b2", "b3"}
    assert fired(AMOUNT_ANOMALY) == {"m2"}  # 5x the average: over 4, not over 10
    # Under the default history alone the same events give the v1 answer everywhere.
    default = reference_findings(events, {"cust_1": 100_000.0})
    assert {tid for r, tid in default if r == GEO_IMPOSSIBLE} >= {"b4", "g2"}
    assert not {tid for r, tid in default if r in (VELOCITY, AMOUNT_ANOMALY)}
