"""Incremental, exact evaluation of the fraud rules for one customer: what the streaming job runs.

A `CustomerWindow` holds the customer's recent transactions and, for each, the rules that already
alerted on it. Each micro-batch `ingest`s the customer's new transactions with the batch's
watermark (max event time seen in earlier batches minus the allowed lateness):

- a transaction_id already held (or repeated in the batch) is a redelivery: counted once, ignored;
- a transaction with event time before the watermark is late: reported and not held; only
  AMOUNT_ANOMALY judges it (it needs no other transaction), the windowed rules do not;
- every other transaction is accepted and AMOUNT_ANOMALY judges it once, on arrival;
- VELOCITY and GEO_IMPOSSIBLE are re-evaluated on the union of held and new transactions for every
  transaction at or after the earliest new one — so a late arrival completes a pattern for a
  transaction seen in an earlier batch — and fire only for (rule, transaction) pairs not yet alerted.

Cost: a pair of transactions is compared for GEO_IMPOSSIBLE once, in the batch where the second of
the two arrives; older transactions are only compared with the batch's new ones.

Why this is exact: both rules are monotone (adding transactions never withdraws a finding), so
firing as soon as the transactions seen so far satisfy a rule gives, once all have arrived, the
findings of the full sorted set. Nothing is missed because a transaction is only dropped when no
accepted transaction can reach it any more: an accepted transaction has event time >= watermark and
looks back at most HORIZON (5 min), so everything older than watermark - HORIZON is evicted and
nothing younger is. `expiry_ms` is the event-time timer that clears an idle customer entirely.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter

from darooghe.fraud.alerts import Alert, make_alert, now_ms
from darooghe.fraud.rules import HORIZON_MS, AmountAnomalyRule, GeoImpossibleRule, VelocityRule
from darooghe.fraud.txn import Txn

VELOCITY, GEO_IMPOSSIBLE = VelocityRule.name, GeoImpossibleRule.name
#: Rules already alerted on a held transaction, as bits (compact in state).
ALERTED_FLAGS = {VELOCITY: 1, GEO_IMPOSSIBLE: 2}
_VELOCITY_BIT, _GEO_BIT = ALERTED_FLAGS[VELOCITY], ALERTED_FLAGS[GEO_IMPOSSIBLE]
_TIME_ORDER = itemgetter(2, 0)  # Txn (event_ms, transaction_id)


@dataclass
class IngestResult:
    alerts: list[Alert] = field(default_factory=list)
    late: list[Txn] = field(default_factory=list)
    duplicates: list[Txn] = field(default_factory=list)
    accepted: list[Txn] = field(default_factory=list)
    evicted: int = 0
    #: The rules that judged the late transactions: AMOUNT_ANOMALY alone, and not even it for a
    #: customer without an average (not judged, late or not).
    late_judged: tuple[str, ...] = ()


class CustomerWindow:
    """The recent transactions of one customer, enough to judge any transaction still to come.

    Held as transaction_id -> Txn, plus transaction_id -> alerted bits (ALERTED_FLAGS) for the few
    transactions that already alerted.
    """

    def __init__(self, customer_id: str, held: Iterable[tuple[Txn, int]] = ()) -> None:
        self.customer_id = customer_id
        self._txns: dict[str, Txn] = {}
        self._alerted: dict[str, int] = {}
        for t, flags in held:
            self._txns[t.transaction_id] = t
            if flags:
                self._alerted[t.transaction_id] = flags

    def __len__(self) -> int:
        return len(self._txns)

    def held(self) -> list[tuple[Txn, int]]:
        """(transaction, alerted bits) in event-time order (simultaneous ones by transaction_id)."""
        return [(t, self._alerted.get(t.transaction_id, 0)) for t in self._ordered()]

    def alerted_rules(self, transaction_id: str) -> set[str]:
        flags = self._alerted.get(transaction_id, 0)
        return {rule for rule, bit in ALERTED_FLAGS.items() if flags & bit}

    def _ordered(self) -> list[Txn]:
        return sorted(self._txns.values(), key=_TIME_ORDER)

    def expiry_ms(self) -> int | None:
        """Event time after which nothing held can matter: the latest transaction + HORIZON + 1 ms
        (timers fire when the watermark reaches them; a transaction exactly HORIZON later than the
        latest one is still compared with it)."""
        if not self._txns:
            return None
        return max(t.event_ms for t in self._txns.values()) + HORIZON_MS + 1

    def evict(self, watermark_ms: int) -> int:
        """Drop transactions no transaction at or after the watermark can look back to."""
        cutoff = watermark_ms - HORIZON_MS
        old = [tid for tid, t in self._txns.items() if t.event_ms < cutoff]
        for tid in old:
            del self._txns[tid]
            self._alerted.pop(tid, None)
        return len(old)

    def ingest(
        self,
        txns: Iterable[Txn],
        watermark_ms: int,
        average: float | None,
        detected_ms: int | None = None,
    ) -> IngestResult:
        result = IngestResult(evicted=self.evict(watermark_ms))
        new: list[Txn] = []
        held = self._txns
        late_ids: set[str] = set()
        for t in txns:
            if t.customer_id != self.customer_id:
                raise ValueError(
                    f"transaction {t.transaction_id} of {t.customer_id!r} given to the window of "
                    f"{self.customer_id!r}"
                )
            if t.transaction_id in held or t.transaction_id in late_ids:
                result.duplicates.append(t)
            elif t.event_ms < watermark_ms:
                late_ids.add(t.transaction_id)
                result.late.append(t)
            else:
                held[t.transaction_id] = t
                new.append(t)
        result.accepted = new
        if not new and not result.late:
            return result
        detected = now_ms() if detected_ms is None else detected_ms
        new.sort(key=_TIME_ORDER)
        if AmountAnomalyRule.judged(average):
            result.alerts.extend(self._amount_alerts(new, average, detected))
        if result.late and AmountAnomalyRule.judged(average):
            result.late_judged = (AmountAnomalyRule.name,)
            result.alerts.extend(self._amount_alerts(result.late, average, detected))
        if new:
            result.alerts.extend(
                self._evaluate({t.transaction_id for t in new}, new[0].event_ms, detected)
            )
        return result

    @staticmethod
    def _amount_alerts(txns: list[Txn], average: float, detected_ms: int) -> list[Alert]:
        """AMOUNT_ANOMALY on each transaction alone: the same judgment on time and late."""
        alerts = []
        for t in txns:
            if AmountAnomalyRule.fires(t.amount, average):
                evidence = AmountAnomalyRule.evidence(t.amount, average)
                alerts.append(make_alert(AmountAnomalyRule.name, t, evidence, detected_ms))
        return alerts

    def _evaluate(self, new_ids: set[str], since_ms: int, detected_ms: int) -> list[Alert]:
        """VELOCITY and GEO_IMPOSSIBLE for every held transaction at or after `since_ms` (only
        those can gain a finding from transactions that arrived at or after it)."""
        ordered = self._ordered()
        times = [t.event_ms for t in ordered]
        alerted = self._alerted
        alerts: list[Alert] = []
        geo_horizon = GeoImpossibleRule.HORIZON_MS
        far = GeoImpossibleRule.distance_if_too_far
        precedes = GeoImpossibleRule.precedes
        for t in ordered[bisect_left(times, since_ms) :]:
            flags = alerted.get(t.transaction_id, 0)
            # Transactions with event time <= t's, in order: the candidates of both rules.
            upto = bisect_right(times, t.event_ms)
            if not flags & _VELOCITY_BIT:
                first = bisect_right(times, VelocityRule.window_start_ms(t))
                if VelocityRule.fires(upto - first):
                    evidence = VelocityRule.evidence(t, ordered[first:upto])
                    alerts.append(make_alert(VELOCITY, t, evidence, detected_ms))
                    flags |= _VELOCITY_BIT
            if not flags & _GEO_BIT:
                t_is_new = t.transaction_id in new_ids
                # Most recent earlier transaction first; a pair of two old transactions was
                # compared when the later-arriving of them arrived, so an old t only meets new ones.
                for j in range(upto - 1, bisect_left(times, t.event_ms - geo_horizon) - 1, -1):
                    other = ordered[j]
                    if other is t or not (t_is_new or other.transaction_id in new_ids):
                        continue
                    if not precedes(other, t):
                        continue
                    km = far(other, t)
                    if km is not None:
                        evidence = GeoImpossibleRule.evidence(t, other, km)
                        alerts.append(make_alert(GEO_IMPOSSIBLE, t, evidence, detected_ms))
                        flags |= _GEO_BIT
                        break
            if flags:
                alerted[t.transaction_id] = flags
        return alerts
