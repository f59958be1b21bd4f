"""Fraud injection and the ground-truth labels of the three fraud rules.

Injection marks arrivals of the Poisson process, it never adds any: the arrival times stay an exact
sample of λ(t), and FRAUD_RATE is the share of arrivals taken by fraud, a third per pattern:

- velocity burst: an arrival starts a burst of 6–9 payments by one customer; the burst takes the
  next ordinary arrivals (whoever they were for) and gives them to that customer, so at 100
  events/min a burst lasts seconds (card testing).
- impossible travel: the arrival is given to the customer of the previous ordinary arrival (at
  most 290 s earlier) and placed in a city at least 300 km from that customer's home, in person
  at a merchant there (online when no merchant is there).
- amount spike: the customer pays 15–40 × the larger of the typical spend and the average of its
  approved amounts so far; only customers with at least 5 approved payments get one.

Labels are not "what was injected" but what the rules say, computed exactly on the valid stream
(injected invalid events excluded, as the validator removes them), in event time, with the state
carried from chunk to chunk. The numbers come from a `RuleSet` (darooghe.fraud.ruleset; default
`DEFAULT_RULESET`, the one the detector and the oracle start from), the distance from
darooghe.fraud.geo; only the algorithm is the labeller's own (vectorised over a chunk). With the
default numbers:

- VELOCITY: more than velocity_max_count (5) valid transactions of the customer with event time in
  (t − velocity_window_ms (2 min), t];
- GEO_IMPOSSIBLE: an earlier valid transaction of the customer, or a simultaneous one with a smaller
  transaction_id, at most geo_horizon_ms (5 min) before and more than geo_max_km (50 km) away
  (haversine, R = 6371 km, on the coordinates as written in the JSON);
- AMOUNT_ANOMALY: amount > amount_factor (10) × the average of the customer's approved
  transactions with an earlier event time (customers without one are not judged). In live mode
  the average starts from a virtual history of LIVE_PRIOR_COUNT payments at the typical spend,
  standing for the backfill the batch layer profiled (the detector uses the batch profile's
  average instead, hence its recall below 100 % on this rule).

Labels say what each rule gives with these numbers whether or not the rule set switches it on
(`enabled`): they are the ground truth a switched-off rule is measured against too.

A transaction that several rules fire on carries all of them, comma-separated in the order
VELOCITY, GEO_IMPOSSIBLE, AMOUNT_ANOMALY, in the `darooghe-label` header. The population is built
so that ordinary traffic fires GEO_IMPOSSIBLE and AMOUNT_ANOMALY never; VELOCITY can fire on its
own for very active customers at high EVENT_RATE, and then it is labelled too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from darooghe.fraud.geo import haversine_km_array
from darooghe.fraud.ruleset import DEFAULT_RULESET, RuleSet
from darooghe.generator.population import AMOUNT_ROUNDING, Population
from darooghe.schema import AMOUNT_ANOMALY, FRAUD_RULES, GEO_IMPOSSIBLE, VELOCITY

BURST_SIZES = (6, 7, 8, 9)
TRAVEL_MAX_GAP_MS = 290 * 1000
SPIKE_FACTOR = (15.0, 40.0)
SPIKE_MIN_PRIOR = 5
LIVE_PRIOR_COUNT = 20

# Arrival marks.
REGULAR, BURST, TRAVEL, SPIKE = 0, 1, 2, 3
ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA = 4, 5, 6, 7
BURST_START = 8  # transient: becomes BURST once its members are claimed
INVALID_MARKS = (ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA)
INVALID_LABELS = {ERR_AMOUNT: "ERR_AMOUNT", ERR_TIME: "ERR_TIME", ERR_DEVICE: "ERR_DEVICE",
                  ERR_SCHEMA: "ERR_SCHEMA"}
MARK_NAMES = {REGULAR: "regular", BURST: "velocity_burst", TRAVEL: "impossible_travel",
              SPIKE: "amount_spike", **INVALID_LABELS}

# Label bits.
VELOCITY_BIT, GEO_BIT, AMOUNT_BIT = 1, 2, 4
RULE_BITS = ((VELOCITY_BIT, VELOCITY), (GEO_BIT, GEO_IMPOSSIBLE), (AMOUNT_BIT, AMOUNT_ANOMALY))
assert tuple(rule for _, rule in RULE_BITS) == FRAUD_RULES
LABEL_TEXT = [
    ",".join(rule for bit, rule in RULE_BITS if bits & bit) or None for bits in range(8)
]

_CUSTOMER_SHIFT = np.int64(1) << np.int64(40)  # sort key = customer · 2^40 + (time − origin)


def mark_thresholds(fraud_rate: float, invalid_rates: dict[str, float]) -> np.ndarray:
    """Cumulative probabilities of the marks drawn per arrival (ERR_*, burst start, travel, spike)."""
    per_pattern = fraud_rate / 3.0
    burst_start = per_pattern / float(np.mean(BURST_SIZES))
    probs = [
        invalid_rates["ERR_AMOUNT"],
        invalid_rates["ERR_TIME"],
        invalid_rates["ERR_DEVICE"],
        invalid_rates["ERR_SCHEMA"],
        burst_start,
        per_pattern,
        per_pattern,
    ]
    return np.cumsum(probs)


_MARK_OF_BIN = np.array([ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA, BURST_START, TRAVEL, SPIKE, REGULAR])


def draw_marks(u: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return _MARK_OF_BIN[np.searchsorted(thresholds, u, side="right")]


@dataclass
class Carry:
    """What one chunk hands to the next."""

    approved_sum: np.ndarray  # per customer: sum of approved valid amounts so far (int64)
    approved_count: np.ndarray  # per customer: their count
    # valid events within the rule set's horizon (customer, time, id keys, lat, lng)
    recent: dict[str, np.ndarray] = field(default_factory=dict)
    pending_bursts: list[list[int]] = field(default_factory=list)  # [customer, members still due]
    last_regular: tuple[int, int] | None = None  # (customer, time ms) of the last ordinary arrival

    @classmethod
    def empty(cls, customers: int) -> Carry:
        z = np.zeros(customers, dtype=np.int64)
        return cls(z, z.copy(), _empty_recent())

    @classmethod
    def with_live_prior(cls, population: Population) -> Carry:
        """The virtual history of live mode: LIVE_PRIOR_COUNT approved payments at typical spend."""
        carry = cls.empty(population.customer_count)
        carry.approved_count[:] = LIVE_PRIOR_COUNT
        carry.approved_sum[:] = LIVE_PRIOR_COUNT * population.typical_spend
        return carry


def _empty_recent() -> dict[str, np.ndarray]:
    return {
        "customer": np.zeros(0, np.int64),
        "time": np.zeros(0, np.int64),
        "id_high": np.zeros(0, np.uint64),
        "id_low": np.zeros(0, np.uint64),
        "lat": np.zeros(0),
        "lng": np.zeros(0),
    }


def assign_bursts(
    marks: np.ndarray, customers: np.ndarray, sizes: np.ndarray, carry: Carry
) -> None:
    """Turn burst starts and the ordinary arrivals they claim into BURST members (in place).

    Bursts are served in time order, those still open from the previous chunk first; each takes
    the next ordinary arrivals not yet taken. A burst still short at the chunk's end continues in
    the next chunk.
    """
    starts = np.flatnonzero(marks == BURST_START)
    marks[starts] = BURST
    regular = np.flatnonzero(marks == REGULAR)
    taken = np.zeros(len(regular), dtype=bool)
    still_open: list[list[int]] = []

    def claim(customer: int, due: int, after: int) -> int:
        pos = int(np.searchsorted(regular, after, side="right"))
        while due and pos < len(regular):
            if not taken[pos]:
                taken[pos] = True
                idx = regular[pos]
                marks[idx] = BURST
                customers[idx] = customer
                due -= 1
            pos += 1
        return due

    for customer, due in carry.pending_bursts:
        due = claim(customer, due, -1)
        if due:
            still_open.append([customer, due])
    for start, size in zip(starts.tolist(), sizes.tolist()):
        due = claim(int(customers[start]), size - 1, start)
        if due:
            still_open.append([int(customers[start]), due])
    carry.pending_bursts = still_open


def assign_travel(
    marks: np.ndarray, customers: np.ndarray, t_ms: np.ndarray, carry: Carry
) -> np.ndarray:
    """Give each TRAVEL arrival to the customer of the previous ordinary arrival (in place).

    Returns the travel rows kept; a travel arrival without an ordinary one in the previous
    TRAVEL_MAX_GAP_MS becomes ordinary. Also records the chunk's last ordinary arrival in `carry`.
    """
    n = len(marks)
    regular_pos = np.where(marks == REGULAR, np.arange(n), -1)
    last_regular = np.maximum.accumulate(regular_pos) if n else regular_pos
    travel = np.flatnonzero(marks == TRAVEL)
    previous = np.where(travel > 0, last_regular[np.maximum(travel - 1, 0)], -1)
    prev_customer = customers[np.maximum(previous, 0)].copy()
    prev_time = t_ms[np.maximum(previous, 0)].copy()
    if carry.last_regular is not None:
        from_carry = previous < 0
        prev_customer[from_carry] = carry.last_regular[0]
        prev_time[from_carry] = carry.last_regular[1]
        previous = np.where(from_carry, 0, previous)
    ok = (previous >= 0) & (t_ms[travel] - prev_time <= TRAVEL_MAX_GAP_MS)
    marks[travel[~ok]] = REGULAR
    kept = travel[ok]
    customers[kept] = prev_customer[ok]
    regular_now = np.flatnonzero(marks == REGULAR)
    if len(regular_now):
        i = regular_now[-1]
        carry.last_regular = (int(customers[i]), int(t_ms[i]))
    return kept


@dataclass
class RuleInput:
    """The valid events of one chunk, in arrival order, as the rules see them."""

    customer: np.ndarray
    time: np.ndarray
    id_high: np.ndarray
    id_low: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    amount: np.ndarray
    approved: np.ndarray


class RuleState:
    """The chunk's valid events and the carried recent ones, sorted by (customer, time, id);
    `rules` gives the windows, distance and factor."""

    def __init__(self, events: RuleInput, carry: Carry, rules: RuleSet = DEFAULT_RULESET) -> None:
        self.rules = rules
        recent = carry.recent
        n_recent = len(recent["customer"])
        self.n_recent = n_recent
        customer = np.concatenate([recent["customer"], events.customer])
        time = np.concatenate([recent["time"], events.time])
        id_high = np.concatenate([recent["id_high"], events.id_high])
        id_low = np.concatenate([recent["id_low"], events.id_low])
        order = np.lexsort((id_low, id_high, time, customer))
        self.order = order
        self.customer = customer[order]
        self.time = time[order]
        self.lat = np.concatenate([recent["lat"], events.lat])[order]
        self.lng = np.concatenate([recent["lng"], events.lng])[order]
        origin = int(time.min()) if len(time) else 0
        self.key = self.customer * _CUSTOMER_SHIFT + (self.time - origin)
        # position in the sorted arrays of each chunk event (arrival order)
        self.position = np.empty(len(order), dtype=np.int64)
        self.position[order] = np.arange(len(order))
        self.chunk_position = self.position[n_recent:]
        self._first_same = np.searchsorted(self.key, self.key, side="left")
        self._group_start = np.searchsorted(self.key, self.customer * _CUSTOMER_SHIFT, side="left")
        self.approved_sorted = np.concatenate([np.zeros(n_recent, bool), events.approved])[order]
        self.carry = carry

    def velocity_counts(self) -> np.ndarray:
        """Per chunk event: valid events of its customer with time in (t − window, t]."""
        right = np.searchsorted(self.key, self.key, side="right")
        left = np.searchsorted(self.key, self.key - self.rules.velocity_window_ms, side="right")
        return (right - left)[self.chunk_position]

    def geo_flags(self) -> np.ndarray:
        """Per chunk event: an earlier-or-simultaneous (smaller id) event at most geo_horizon_ms
        before and more than geo_max_km away."""
        n = len(self.key)
        flag = np.zeros(n, dtype=bool)
        lag = 1
        while lag < n:
            same = (self.customer[lag:] == self.customer[:-lag]) & (
                self.time[lag:] - self.time[:-lag] <= self.rules.geo_horizon_ms
            )
            if not same.any():
                break
            later = np.flatnonzero(same) + lag
            far = haversine_km_array(
                self.lat[later], self.lng[later], self.lat[later - lag], self.lng[later - lag]
            ) > self.rules.geo_max_km
            flag[later[far]] = True
            lag += 1
        return flag[self.chunk_position]

    def prior_approved(self, amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk event: (sum, count) of the customer's approved amounts at earlier times."""
        amounts = np.concatenate([np.zeros(self.n_recent, np.int64), amount])[self.order]
        weights = np.where(self.approved_sorted, amounts, 0)
        sums = np.concatenate([[0], np.cumsum(weights)])
        counts = np.concatenate([[0], np.cumsum(self.approved_sorted.astype(np.int64))])
        first, start = self._first_same, self._group_start
        prior_sum = sums[first] - sums[start] + self.carry.approved_sum[self.customer]
        prior_count = counts[first] - counts[start] + self.carry.approved_count[self.customer]
        return prior_sum[self.chunk_position], prior_count[self.chunk_position]


def settle_spikes(
    state: RuleState,
    amount: np.ndarray,
    spike_rows: np.ndarray,
    spike_factor: np.ndarray,
    typical: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Final amounts of the spike rows (valid-chunk indices); returns (amount, kept spike rows).

    A spike's amount depends on the customer's earlier approved amounts, which may hold an earlier
    spike of the same chunk: iterate until no amount changes (each pass settles one more level).
    """
    amount = amount.copy()
    _, count = state.prior_approved(amount)
    eligible = count[spike_rows] >= SPIKE_MIN_PRIOR
    rows, factor = spike_rows[eligible], spike_factor[eligible]
    for _ in range(64):
        prior_sum, prior_count = state.prior_approved(amount)
        average = prior_sum[rows] / np.maximum(prior_count[rows], 1)
        reference = np.maximum(typical[rows].astype(np.float64), average)
        new = (np.ceil(factor * reference / AMOUNT_ROUNDING) * AMOUNT_ROUNDING).astype(np.int64)
        if np.array_equal(new, amount[rows]):
            break
        amount[rows] = new
    return amount, rows


def label_bits(state: RuleState, amount: np.ndarray) -> np.ndarray:
    """The rule bits of every chunk event (valid ones; arrival order)."""
    rules = state.rules
    bits = np.where(state.velocity_counts() > rules.velocity_max_count, VELOCITY_BIT, 0)
    bits |= np.where(state.geo_flags(), GEO_BIT, 0)
    prior_sum, prior_count = state.prior_approved(amount)
    # amount > factor · sum/count, exactly as the oracle (rationals): with factor = num/den,
    # amount·count·den > num·sum in int64 (far from overflow for den ≤ 1024: 10, 2.5, 7.75...).
    # Other factors (0.1 is 3602879701896397/2^55) compare in float64.
    factor = Fraction(rules.amount_factor)
    if factor.denominator <= 1024:
        num, den = np.int64(factor.numerator), np.int64(factor.denominator)
        over = amount * prior_count * den > num * prior_sum
    else:
        over = amount * prior_count > float(factor) * prior_sum
    anomaly = (prior_count > 0) & over
    bits |= np.where(anomaly, AMOUNT_BIT, 0)
    return bits.astype(np.int64)


def advance(carry: Carry, state: RuleState, events: RuleInput, amount: np.ndarray, end_ms: int) -> None:
    """Fold a chunk into the carry: approved totals, and the events within the rules' horizon
    (the longer of the velocity window and the geo horizon)."""
    approved = events.approved
    carry.approved_sum += np.bincount(
        events.customer[approved], weights=amount[approved], minlength=len(carry.approved_sum)
    ).round().astype(np.int64)  # exact: per-customer sums stay far below 2^53
    carry.approved_count += np.bincount(events.customer[approved], minlength=len(carry.approved_count))
    keep = state.time > end_ms - state.rules.horizon_ms
    ids = (
        np.concatenate([carry.recent["id_high"], events.id_high])[state.order],
        np.concatenate([carry.recent["id_low"], events.id_low])[state.order],
    )
    carry.recent = {
        "customer": state.customer[keep],
        "time": state.time[keep],
        "id_high": ids[0][keep],
        "id_low": ids[1][keep],
        "lat": state.lat[keep],
        "lng": state.lng[keep],
    }
