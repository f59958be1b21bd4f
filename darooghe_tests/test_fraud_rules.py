"""The fraud rules at their boundaries, the incremental evaluator against the reference oracle.

Pure Python: no Spark, no services. The streaming job runs `CustomerWindow`; these tests pin its
semantics (darooghe.fraud.rules) and compare it with the independent `reference` evaluator on random
streams delivered out of order across simulated micro-batches.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from darooghe.fraud.alerts import alert_id, make_alert
from darooghe.fraud.geo import haversine_km
from darooghe.fraud.reference import reference_findings
from darooghe.fraud.rules import HORIZON_MS, VelocityRule
from darooghe.fraud.txn import Txn, iso_ms, parse_event_ms
from darooghe.fraud.window import CustomerWindow
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY
from darooghe_tests.fraud_streams import (
    MASHHAD,
    MIN,
    SEC,
    T0,
    TEHRAN,
    deliver_out_of_order,
    north_of,
    random_stream,
    txn,
)


def detect(txns, average=None, watermark=0):
    """One batch into a fresh window; returns {(rule, txn_id)}."""
    window = CustomerWindow(txns[0].customer_id)
    return {a.finding for a in window.ingest(txns, watermark, average).alerts}


def oracle(txns, averages=None):
    return set(reference_findings(txns, averages or {}))


# --- time and distance --------------------------------------------------------------------------


def test_event_time_round_trip():
    assert iso_ms(parse_event_ms("2026-03-23T14:35:22.145Z")) == "2026-03-23T14:35:22.145Z"
    assert parse_event_ms("1970-01-01T00:00:01.001Z") == 1001


def test_haversine_known_distances():
    assert haversine_km(*TEHRAN, *TEHRAN) == 0
    assert 735 < haversine_km(*TEHRAN, *MASHHAD) < 745
    assert haversine_km(*TEHRAN, *north_of(TEHRAN, 50.0)) == pytest.approx(50.0, abs=1e-6)


# --- VELOCITY -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, fires", [(5, False), (6, True)])
def test_velocity_five_versus_six_in_window(n, fires):
    txns = [txn(f"t{i}", i * 10 * SEC) for i in range(n)]
    expected = {(VELOCITY, f"t{n - 1}")} if fires else set()
    assert detect(txns) == expected == oracle(txns)


def test_velocity_window_excludes_exactly_two_minutes_before():
    # Six events spanning exactly 2 minutes: the first is at t - 2 min, outside (t - 2 min, t].
    txns = [txn("t0", 0)] + [txn(f"t{i}", 120 * SEC - (5 - i) * SEC) for i in range(1, 6)]
    assert txns[-1].event_ms - txns[0].event_ms == VelocityRule.WINDOW_MS
    assert detect(txns) == set() == oracle(txns)
    # One millisecond later the first event is inside the window.
    txns[0] = txn("t0", 1)
    assert detect(txns) == {(VELOCITY, "t5")} == oracle(txns)


def test_velocity_simultaneous_transactions_all_count():
    txns = [txn(f"t{i}", 0) for i in range(6)]
    expected = {(VELOCITY, f"t{i}") for i in range(6)}
    assert detect(txns) == expected == oracle(txns)


def test_velocity_redelivered_transaction_counts_once():
    txns = [txn(f"t{i}", i * SEC) for i in range(5)]
    redelivered = txns + [txns[2]]
    assert detect(redelivered) == set() == oracle(redelivered)
    window = CustomerWindow("cust_1")
    window.ingest(txns, 0, None)
    result = window.ingest([txns[2]], 0, None)
    assert [t.transaction_id for t in result.duplicates] == ["t2"] and not result.alerts


# --- GEO_IMPOSSIBLE -------------------------------------------------------------------------------


@pytest.mark.parametrize("km, fires", [(49.99, False), (50.01, True)])
def test_geo_fifty_km_boundary(km, fires):
    txns = [txn("a", 0), txn("b", 60 * SEC, north_of(TEHRAN, km))]
    expected = {(GEO_IMPOSSIBLE, "b")} if fires else set()
    assert detect(txns) == expected == oracle(txns)


@pytest.mark.parametrize("gap_ms, fires", [(5 * MIN, True), (5 * MIN + 1, False)])
def test_geo_five_minute_boundary(gap_ms, fires):
    txns = [txn("a", 0), txn("b", gap_ms, MASHHAD)]
    expected = {(GEO_IMPOSSIBLE, "b")} if fires else set()
    assert detect(txns) == expected == oracle(txns)


def test_geo_alerts_the_later_transaction_even_when_it_arrives_first():
    window = CustomerWindow("cust_1")
    later, earlier = txn("x", 3 * MIN, MASHHAD), txn("y", 0)
    assert window.ingest([later], 0, None).alerts == []
    alerts = window.ingest([earlier], 0, None).alerts
    assert [a.finding for a in alerts] == [(GEO_IMPOSSIBLE, "x")]
    assert alerts[0].evidence["other_transaction_id"] == "y"
    assert alerts[0].evidence["seconds_apart"] == 180.0


def test_geo_simultaneous_pair_alerts_the_larger_transaction_id():
    txns = [txn("b", 0, MASHHAD), txn("a", 0)]
    assert detect(txns) == {(GEO_IMPOSSIBLE, "b")} == oracle(txns)
    alert = CustomerWindow("cust_1").ingest(txns, 0, None).alerts[0]
    assert alert.evidence["speed_kmh"] is None and alert.severity == "high"


# --- AMOUNT_ANOMALY -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, average, fires",
    [
        (1_000_000, 100_000.0, False),
        (1_000_001, 100_000.0, True),
        (8_123_455, 812_345.5, False),
        (8_123_456, 812_345.5, True),
        (10**9, None, False),
        (10**9, 0.0, False),
    ],
)
def test_amount_anomaly_boundaries(amount, average, fires):
    txns = [txn("a", 0, amount=amount)]
    expected = {(AMOUNT_ANOMALY, "a")} if fires else set()
    averages = {} if average is None else {"cust_1": average}
    assert detect(txns, average) == expected == oracle(txns, averages)


def test_amount_evidence_and_severity():
    alert = CustomerWindow("cust_1").ingest([txn("a", 0, amount=3_000_000)], 0, 100_000.0).alerts[0]
    assert alert.evidence == {
        "amount": 3_000_000,
        "historical_average": 100_000.0,
        "ratio": 30.0,
        "threshold_factor": 10,
    }
    assert alert.severity == "medium"


# --- alerts -----------------------------------------------------------------------------------------


def test_alert_id_is_deterministic_and_rule_specific():
    assert alert_id(VELOCITY, "t1") == alert_id(VELOCITY, "t1")
    assert alert_id(VELOCITY, "t1") != alert_id(GEO_IMPOSSIBLE, "t1")
    with pytest.raises(ValueError, match="not one of"):
        alert_id("SPEED", "t1")


def test_alert_value_shape():
    t = txn("t9", 0)
    value = make_alert(
        VELOCITY, t, VelocityRule.evidence(t, [t] * 6), detected_ms=T0 + 500
    ).to_value()
    assert list(value) == [
        "alert_id",
        "rule",
        "transaction_id",
        "customer_id",
        "event_time",
        "detected_at",
        "evidence",
        "severity",
    ]
    assert value["event_time"] == "2026-03-23T10:00:00.000Z"
    assert value["detected_at"] == "2026-03-23T10:00:00.500Z"
    assert value["evidence"]["window_start"] == "2026-03-23T09:58:00.000Z"
    assert value["severity"] == "low"


def test_velocity_evidence_is_bounded_whatever_the_burst():
    """25k transactions in two minutes: the evidence names the count, the window, the first and
    last ids and a capped list, not all 25k ids (that made alerts over 1 MB)."""
    burst = [txn(f"b{i:05d}", i * 4) for i in range(25_000)]  # 100 s
    t = burst[-1]
    evidence = VelocityRule.evidence(t, burst)
    assert evidence["count"] == 25_000
    assert evidence["first_transaction_id"] == "b00000"
    assert evidence["last_transaction_id"] == "b24999"
    assert evidence["transaction_ids"] == [f"b{i:05d}" for i in range(24_980, 25_000)]
    assert evidence["transaction_ids_omitted"] == 24_980
    assert len(make_alert(VELOCITY, t, evidence, detected_ms=T0).to_json()) < 2_000


def test_burst_alerts_stay_small():
    burst = [txn(f"b{i:04d}", i * 40) for i in range(3_000)]  # 3,000 in 2 min
    alerts = CustomerWindow("cust_1").ingest(burst, 0, None).alerts
    assert len(alerts) == 3_000 - VelocityRule.MAX_COUNT
    assert max(len(a.to_json()) for a in alerts) < 2_000
    assert alerts[-1].evidence["count"] == 3_000


# --- lateness and eviction ---------------------------------------------------------------------------


def test_event_before_the_watermark_is_late_and_judged_by_amount_only():
    window = CustomerWindow("cust_1")
    burst = [txn(f"t{i}", i * SEC) for i in range(5)]  # five in 2 min: a sixth would fire
    assert window.ingest(burst, 0, 10_000.0).alerts == []
    # Behind the watermark: would be the sixth of the burst and 740 km from t4 one second later,
    # and is 100 x the average. Only the amount rule judges it, with the same alert_id as on time.
    late = txn("late", 5 * SEC, MASHHAD, amount=1_000_000)
    result = window.ingest([late], watermark_ms=T0 + 6 * SEC, average=10_000.0)
    assert [t.transaction_id for t in result.late] == ["late"] and result.accepted == []
    assert [a.finding for a in result.alerts] == [(AMOUNT_ANOMALY, "late")]
    assert result.alerts[0].alert_id == alert_id(AMOUNT_ANOMALY, "late")
    assert result.late_judged == (AMOUNT_ANOMALY,)
    assert "late" not in {t.transaction_id for t, _ in window.held()}
    # Exactly 10 x is not an anomaly, late or not; a customer without history is not judged.
    result = window.ingest([txn("ten", 0, amount=100_000)], T0 + 6 * SEC, 10_000.0)
    assert result.alerts == [] and result.late_judged == (AMOUNT_ANOMALY,)
    result = CustomerWindow("cust_1").ingest([txn("x", 0, amount=10**9)], T0 + 1, None)
    assert result.alerts == [] and result.late_judged == ()


def test_a_late_event_repeated_in_its_batch_is_reported_once():
    window = CustomerWindow("cust_1")
    late = txn("late", 0, amount=10**9)
    result = window.ingest([late, late], watermark_ms=T0 + 1, average=1.0)
    assert [t.transaction_id for t in result.late] == ["late"]
    assert [t.transaction_id for t in result.duplicates] == ["late"]
    assert [a.finding for a in result.alerts] == [(AMOUNT_ANOMALY, "late")]


def test_eviction_keeps_exactly_what_an_accepted_event_can_reach():
    window = CustomerWindow("cust_1")
    window.ingest([txn("a", 0), txn("b", MIN)], 0, None)
    assert window.expiry_ms() == T0 + MIN + HORIZON_MS + 1
    # Watermark exactly HORIZON after "a": an event at the watermark is still compared with "a".
    assert window.evict(T0 + HORIZON_MS) == 0
    result = window.ingest([txn("c", HORIZON_MS, MASHHAD)], T0 + HORIZON_MS, None)
    assert {a.finding for a in result.alerts} == {(GEO_IMPOSSIBLE, "c")}
    assert window.evict(T0 + HORIZON_MS + 1) == 1  # now "a" is out of reach
    assert window.evict(T0 + 20 * MIN) == 2 and len(window) == 0 and window.expiry_ms() is None


def test_each_finding_alerted_once_across_batches():
    window = CustomerWindow("cust_1")
    first = window.ingest([txn(f"t{i}", i * SEC) for i in range(6)], 0, None).alerts
    later = window.ingest([txn("t6", 6 * SEC)], 0, None).alerts
    assert [a.finding for a in first] == [(VELOCITY, "t5")]
    assert [a.finding for a in later] == [(VELOCITY, "t6")]


# --- incremental == reference on random out-of-order streams ---------------------------------------


def run_micro_batches(arrivals: list[Txn], batch_size: int, lateness_ms: int, averages):
    """What the streaming job does: per batch, watermark = max event time of earlier batches minus
    the lateness; per customer, one window."""
    windows: dict[str, CustomerWindow] = {}
    findings, late, accepted = [], [], []
    watermark, max_seen = 0, None
    for start in range(0, len(arrivals), batch_size):
        batch = arrivals[start : start + batch_size]
        by_customer = defaultdict(list)
        for t in batch:
            by_customer[t.customer_id].append(t)
        for cid, txns in by_customer.items():
            window = windows.setdefault(cid, CustomerWindow(cid))
            result = window.ingest(txns, watermark, averages.get(cid))
            findings += [a.finding for a in result.alerts]
            late += result.late
            accepted += result.accepted
        batch_max = max(t.event_ms for t in batch)
        max_seen = batch_max if max_seen is None else max(max_seen, batch_max)
        watermark = max(watermark, max_seen - lateness_ms)
        for window in windows.values():
            window.evict(watermark)
    return findings, late, accepted


@pytest.mark.parametrize("seed", range(8))
def test_incremental_equals_reference_on_out_of_order_streams(seed):
    rng = random.Random(seed)
    txns = random_stream(rng, customers=6, n=400, span_ms=40 * MIN)
    averages = {f"cust_{i}": 600_000.0 for i in range(4)}  # cust_4, cust_5: no history
    arrivals = deliver_out_of_order(rng, txns, max_delay_ms=90_000)
    findings, late, _accepted = run_micro_batches(
        arrivals, rng.choice([1, 7, 40]), 120_000, averages
    )
    assert not late  # delays stay within the allowed lateness
    assert len(findings) == len(set(findings))  # each (rule, transaction) at most once
    expected = oracle(txns, averages)
    assert set(findings) == expected
    assert {r for r, _ in expected} == {VELOCITY, GEO_IMPOSSIBLE, AMOUNT_ANOMALY}


def test_events_beyond_lateness_are_reported_and_the_rest_stays_exact():
    """Beyond the allowed lateness: the windowed rules on the accepted events, AMOUNT_ANOMALY on
    every event (it needs no window), nothing else."""
    rng = random.Random(99)
    txns = random_stream(rng, customers=4, n=300, span_ms=30 * MIN)
    averages = {f"cust_{i}": 600_000.0 for i in range(3)}  # cust_3: no history
    arrivals = deliver_out_of_order(rng, txns, max_delay_ms=6 * MIN)
    findings, late, accepted = run_micro_batches(arrivals, 10, 60_000, averages)
    assert late
    assert {t.transaction_id for t in accepted} | {t.transaction_id for t in late} == {
        t.transaction_id for t in txns
    }
    windowed = {f for f in oracle(accepted) if f[0] != AMOUNT_ANOMALY}
    amount = {f for f in oracle(txns, averages) if f[0] == AMOUNT_ANOMALY}
    assert set(findings) == windowed | amount
    assert set(reference_findings(accepted, averages, late=late)) == windowed | amount
    late_ids = {t.transaction_id for t in late} - {t.transaction_id for t in accepted}
    assert {tid for rule, tid in findings if rule == AMOUNT_ANOMALY} & late_ids  # late ones alert
    # The windowed rules would have found more had the late events been on time.
    assert {f for f in oracle(txns) if f[0] != AMOUNT_ANOMALY} - windowed
