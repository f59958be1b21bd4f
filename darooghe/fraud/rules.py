"""The three fraud rules: thresholds, predicates, evidence and severity.

One small class per rule, read top to bottom (the habit of Flink's FraudDetector): the logic, the
evidence and the severity. The *numbers* (windows, limits, the factor, an on/off switch) are data:
every predicate takes the `RuleSet` that judges the transaction (`darooghe.fraud.ruleset`; the
detector picks it by event time from a `RuleHistory`), defaulting to the specification's
`DEFAULT_RULESET`. The class constants (WINDOW_MS, MAX_COUNT, ...) are that default, for reading.

Semantics, for transaction t of customer c (the specification's numbers in brackets):
- VELOCITY fires when more than velocity_max_count [5] transactions of c have event time in
  (t - velocity_window_ms [2 min], t], t included (simultaneous transactions all count).
- GEO_IMPOSSIBLE fires when an earlier transaction of c, at most geo_horizon_ms [5 min] before t
  (both ends included), is more than geo_max_km [50 km] away. Simultaneous transactions count as
  earlier when their transaction_id is smaller, so a pair alerts on exactly one of its two
  transactions: the later one.
- AMOUNT_ANOMALY fires when amount > amount_factor [10] x c's historical average; customers without
  a (positive) average are not judged. It needs no other transaction, so it also judges a transaction that
  arrives behind the watermark; the two windowed rules do not (its window may be evicted).

Severity is a pure function of the evidence (the figure that made the rule fire), so the same alert
always carries the same severity:
- VELOCITY: the count in the window — 6-7 low, 8-9 medium, 10 or more high.
- GEO_IMPOSSIBLE: the implied travel speed — any alert implies > 600 km/h; up to 1,000 km/h low,
  up to 2,000 km/h medium, faster (or simultaneous) high.
- AMOUNT_ANOMALY: amount / average — up to 20 low, up to 50 medium, more high.

VELOCITY evidence is bounded (count, window, first and last id, the EVIDENCE_IDS most recent ids)
whatever the burst, so an alert stays far below Kafka's message size limit.
"""

from __future__ import annotations

import math
from fractions import Fraction

from darooghe.fraud.geo import EARTH_RADIUS_KM, haversine_km
from darooghe.fraud.ruleset import DEFAULT_RULESET, RuleSet
from darooghe.fraud.txn import Txn, iso_ms
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY

MINUTE_MS = 60_000
LOW, MEDIUM, HIGH = "low", "medium", "high"


class VelocityRule:
    """Too many transactions of one customer within two minutes."""

    name = VELOCITY
    WINDOW_MS = DEFAULT_RULESET.velocity_window_ms
    MAX_COUNT = DEFAULT_RULESET.velocity_max_count  # fires above this many in the window

    @staticmethod
    def window_start_ms(t: Txn, rules: RuleSet = DEFAULT_RULESET) -> int:
        """Exclusive lower bound of t's window."""
        return t.event_ms - rules.velocity_window_ms

    @staticmethod
    def in_window(t: Txn, other: Txn, rules: RuleSet = DEFAULT_RULESET) -> bool:
        return t.event_ms - rules.velocity_window_ms < other.event_ms <= t.event_ms

    @staticmethod
    def fires(count: int, rules: RuleSet = DEFAULT_RULESET) -> bool:
        return count > rules.velocity_max_count

    #: At most this many transaction ids in an alert's evidence: a burst of n transactions would
    #: otherwise put O(n) ids in each of its n alerts (a 25k burst made alerts over 1 MB, beyond
    #: Kafka's default message size, and the query failed on every retry).
    EVIDENCE_IDS = 20

    @classmethod
    def evidence(cls, t: Txn, window: list[Txn], rules: RuleSet = DEFAULT_RULESET) -> dict:
        ordered = sorted(window, key=lambda x: (x.event_ms, x.transaction_id))
        return cls.evidence_of_ids(t, [x.transaction_id for x in ordered], rules)

    @classmethod
    def evidence_of_ids(cls, t: Txn, ordered_ids, rules: RuleSet = DEFAULT_RULESET) -> dict:
        """Evidence from the window's transaction ids in event-time order (a list or an array
        slice): the count, the window, the first and last id and the EVIDENCE_IDS most recent
        ids (bounded whatever the burst)."""
        count = len(ordered_ids)
        shown = [str(x) for x in ordered_ids[max(0, count - cls.EVIDENCE_IDS) :]]
        return {
            "count": count,
            "window_start": iso_ms(cls.window_start_ms(t, rules)),
            "window_end": iso_ms(t.event_ms),
            "window_ms": rules.velocity_window_ms,
            "first_transaction_id": str(ordered_ids[0]),
            "last_transaction_id": str(ordered_ids[-1]),
            "transaction_ids": shown,
            "transaction_ids_omitted": count - len(shown),
        }

    @staticmethod
    def severity(evidence: dict) -> str:
        count = evidence["count"]
        return HIGH if count >= 10 else MEDIUM if count >= 8 else LOW


class GeoImpossibleRule:
    """Two transactions of one customer too far apart for the time between them."""

    name = GEO_IMPOSSIBLE
    HORIZON_MS = DEFAULT_RULESET.geo_horizon_ms
    MAX_DISTANCE_KM = DEFAULT_RULESET.geo_max_km

    @staticmethod
    def precedes(earlier: Txn, t: Txn, rules: RuleSet = DEFAULT_RULESET) -> bool:
        """`earlier` is a transaction the rule compares t with: before t (or simultaneous with a
        smaller transaction_id), at most geo_horizon_ms before it."""
        gap = t.event_ms - earlier.event_ms
        if gap < 0 or gap > rules.geo_horizon_ms:
            return False
        return gap > 0 or earlier.transaction_id < t.transaction_id

    @staticmethod
    def distance_km(a: Txn, b: Txn) -> float:
        return haversine_km(a.lat, a.lng, b.lat, b.lng)

    @staticmethod
    def too_far(km: float, rules: RuleSet = DEFAULT_RULESET) -> bool:
        return km > rules.geo_max_km

    #: km per degree along a great circle; |dlat| + |dlng| in degrees times this bounds the distance
    #: from above (a meridian leg plus a parallel leg no longer than its equator-length equivalent).
    _KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180

    @classmethod
    def distance_if_too_far(cls, a: Txn, b: Txn, rules: RuleSet = DEFAULT_RULESET) -> float | None:
        """The distance when it is more than geo_max_km, else None — skipping the haversine for
        pairs the upper bound already proves near (the common case: payments in one city)."""
        bound = (abs(a.lat - b.lat) + abs(a.lng - b.lng)) * cls._KM_PER_DEGREE
        if bound < rules.geo_max_km - 1e-6:
            return None
        km = haversine_km(a.lat, a.lng, b.lat, b.lng)
        return km if km > rules.geo_max_km else None

    @classmethod
    def evidence(cls, t: Txn, other: Txn, km: float) -> dict:
        seconds = (t.event_ms - other.event_ms) / 1000
        return {
            "other_transaction_id": other.transaction_id,
            "other_event_time": iso_ms(other.event_ms),
            "distance_km": round(km, 3),
            "seconds_apart": seconds,
            "speed_kmh": None if seconds == 0 else round(km / (seconds / 3600), 1),
            "location": {"lat": t.lat, "lng": t.lng},
            "other_location": {"lat": other.lat, "lng": other.lng},
        }

    @staticmethod
    def severity(evidence: dict) -> str:
        speed = evidence["speed_kmh"]
        if speed is None or speed > 2000:
            return HIGH
        return MEDIUM if speed > 1000 else LOW


class AmountAnomalyRule:
    """An amount far above the customer's historical average."""

    name = AMOUNT_ANOMALY
    FACTOR = DEFAULT_RULESET.amount_factor  # fires when amount > FACTOR x average (1000%)

    @classmethod
    def judged(cls, average: float | None) -> bool:
        """Customers without history (no positive average) are not judged."""
        return average is not None and average > 0

    @classmethod
    def fires(cls, amount: int, average: float | None, rules: RuleSet = DEFAULT_RULESET) -> bool:
        # Exact rational comparison: "exactly 10 x" must never fire through float rounding.
        return cls.judged(average) and Fraction(int(amount)) > Fraction(
            rules.amount_factor
        ) * Fraction(average)

    @staticmethod
    def evidence(amount: int, average: float, rules: RuleSet = DEFAULT_RULESET) -> dict:
        factor = rules.amount_factor
        return {
            "amount": amount,
            "historical_average": average,
            "ratio": round(amount / average, 3),
            # 10, not 10.0: a whole factor reads (and compares) as it always did
            "threshold_factor": int(factor) if float(factor).is_integer() else factor,
        }

    @staticmethod
    def severity(evidence: dict) -> str:
        ratio = evidence["ratio"]
        return HIGH if ratio > 50 else MEDIUM if ratio > 20 else LOW


RULES = {r.name: r for r in (VelocityRule, GeoImpossibleRule, AmountAnomalyRule)}
#: How far back in event time the specification's rules look from a transaction (a rule history's
#: own horizon is `RuleHistory.horizon_ms`: what per-customer state must keep).
HORIZON_MS = DEFAULT_RULESET.horizon_ms
