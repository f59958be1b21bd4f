"""Reference evaluation of the fraud rules on a complete event set: the oracle for the tests.

Written apart from `window` on purpose — a sweep over each customer's full, sorted history with the
SPEC's numbers spelled out here — so that the incremental evaluator and this one agreeing is
evidence, not a tautology. Only the haversine formula is shared. Deliberately simple; fine for
hundreds of thousands of events.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

from darooghe.fraud.alerts import alert_id
from darooghe.fraud.geo import haversine_km
from darooghe.fraud.txn import Txn
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY

# SPEC section 4, restated.
TWO_MINUTES_MS = 120_000
FIVE_MINUTES_MS = 300_000
MORE_THAN_COUNT = 5
MORE_THAN_KM = 50.0
AMOUNT_TIMES = 10

Finding = tuple[str, str]  # (rule, transaction_id)


def unique_transactions(txns: Iterable[Txn]) -> list[Txn]:
    """First occurrence of each transaction_id (a redelivery counts once)."""
    seen: dict[str, Txn] = {}
    for t in txns:
        seen.setdefault(t.transaction_id, t)
    return list(seen.values())


def reference_findings(
    txns: Iterable[Txn], averages: Mapping[str, float] | None = None, late: Iterable[Txn] = ()
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
        for t in _velocity(events):
            findings[(VELOCITY, t.transaction_id)] = t
        for t in _geo_impossible(events):
            findings[(GEO_IMPOSSIBLE, t.transaction_id)] = t
    for t in unique_transactions([*accepted, *late]):
        avg = averages.get(t.customer_id)
        if avg is not None and avg > 0 and t.amount > AMOUNT_TIMES * avg:
            findings[(AMOUNT_ANOMALY, t.transaction_id)] = t
    return findings


def _velocity(events: list[Txn]) -> Iterable[Txn]:
    """Events with more than 5 events of the customer in (t - 2 min, t]; events sorted by time."""
    n = len(events)
    lo = 0  # first event inside the current window
    i = 0
    while i < n:
        # All events sharing this timestamp have the same window (ties are inside it).
        t_ms = events[i].event_ms
        j = i
        while j < n and events[j].event_ms == t_ms:
            j += 1
        while events[lo].event_ms <= t_ms - TWO_MINUTES_MS:
            lo += 1
        if j - lo > MORE_THAN_COUNT:
            yield from events[i:j]
        i = j


def _geo_impossible(events: list[Txn]) -> Iterable[Txn]:
    """Later events of a pair at most 5 min apart and more than 50 km apart."""
    recent: deque[Txn] = deque()  # events within 5 minutes before the current one
    for t in events:
        while recent and t.event_ms - recent[0].event_ms > FIVE_MINUTES_MS:
            recent.popleft()
        # Sorted by (time, id): everything in `recent` is earlier, or simultaneous with a smaller id.
        if any(haversine_km(e.lat, e.lng, t.lat, t.lng) > MORE_THAN_KM for e in recent):
            yield t
        recent.append(t)


def reference_alert_ids(
    txns: Iterable[Txn], averages: Mapping[str, float] | None = None, late: Iterable[Txn] = ()
) -> set[str]:
    return {alert_id(rule, tid) for rule, tid in reference_findings(txns, averages, late)}
