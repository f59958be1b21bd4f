"""Reference evaluation of the fraud rules on a complete event set: the oracle for the tests.

Written apart from `window` on purpose — a direct count over each customer's full, sorted history —
so that the incremental evaluator and this one agreeing is evidence, not a tautology. Only the
haversine formula and the numbers are shared: the numbers come from a rule history
(`darooghe.fraud.ruleset`), and each transaction is judged by the rule set active at its event time,
so a threshold change mid-stream has one right answer here too. Deliberately simple; fine for
hundreds of thousands of events.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction

from darooghe.fraud.alerts import alert_id
from darooghe.fraud.geo import haversine_km
from darooghe.fraud.ruleset import DEFAULT_HISTORY, RuleHistory
from darooghe.fraud.txn import Txn
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY

Finding = tuple[str, str]  # (rule, transaction_id)


def unique_transactions(txns: Iterable[Txn]) -> list[Txn]:
    """First occurrence of each transaction_id (a redelivery counts once)."""
    seen: dict[str, Txn] = {}
    for t in txns:
        seen.setdefault(t.transaction_id, t)
    return list(seen.values())


def reference_findings(
    txns: Iterable[Txn],
    averages: Mapping[str, float] | None = None,
    late: Iterable[Txn] = (),
    rules: RuleHistory = DEFAULT_HISTORY,
) -> dict[Finding, Txn]:
    """Every (rule, transaction_id) the rules give on the full event set.

    `late` are transactions that arrived beyond the allowed lateness: they lost the company of the
    others, so only the amount rule, which looks at nothing else, judges them.
    """
    averages = averages or {}
    accepted = unique_transactions(txns)
    by_customer: dict[str, list[Txn]] = defaultdict(list)
    for t in accepted:
        by_customer[t.customer_id].append(t)
    findings: dict[Finding, Txn] = {}
    for events in by_customer.values():
        events.sort(key=lambda t: (t.event_ms, t.transaction_id))
        times = [t.event_ms for t in events]
        for i, t in enumerate(events):
            active = rules.at(t.event_ms)
            if active.is_enabled(VELOCITY) and _velocity(times, t, active):
                findings[(VELOCITY, t.transaction_id)] = t
            if active.is_enabled(GEO_IMPOSSIBLE) and _geo_impossible(events, times, i, active):
                findings[(GEO_IMPOSSIBLE, t.transaction_id)] = t
    for t in unique_transactions([*accepted, *late]):
        active = rules.at(t.event_ms)
        avg = averages.get(t.customer_id)
        if not active.is_enabled(AMOUNT_ANOMALY) or avg is None or avg <= 0:
            continue
        if Fraction(t.amount) > Fraction(active.amount_factor) * Fraction(avg):
            findings[(AMOUNT_ANOMALY, t.transaction_id)] = t
    return findings


def _velocity(times: list[int], t: Txn, rules) -> bool:
    """More than velocity_max_count events of the customer in (t - window, t], ties included."""
    inside = bisect_right(times, t.event_ms) - bisect_right(
        times, t.event_ms - rules.velocity_window_ms
    )
    return inside > rules.velocity_max_count


def _geo_impossible(events: list[Txn], times: list[int], i: int, rules) -> bool:
    """An earlier event (or a simultaneous one with a smaller id: events are sorted by (time, id))
    at most geo_horizon_ms before events[i] and more than geo_max_km away."""
    t = events[i]
    first = bisect_left(times, t.event_ms - rules.geo_horizon_ms)
    return any(haversine_km(e.lat, e.lng, t.lat, t.lng) > rules.geo_max_km for e in events[first:i])


def reference_alert_ids(
    txns: Iterable[Txn],
    averages: Mapping[str, float] | None = None,
    late: Iterable[Txn] = (),
    rules: RuleHistory = DEFAULT_HISTORY,
) -> set[str]:
    return {alert_id(rule, tid) for rule, tid in reference_findings(txns, averages, late, rules)}
