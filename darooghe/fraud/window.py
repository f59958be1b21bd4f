"""Incremental, exact evaluation of the fraud rules for one customer.

The streaming job runs the same evaluation on many customers at once (`darooghe.fraud.columnar`,
which this class calls with one customer); the semantics and the argument for exactness are here.

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
looks back at most HORIZON (the rule history's longest look-back, 5 min in the specification), so
everything older than watermark - HORIZON is evicted and nothing younger is. `expiry_ms` is the
event-time timer that clears an idle customer entirely. Each transaction is judged by the rule set
active at its event time (`RuleHistory.at`); a finding stays alerted whatever comes later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from darooghe.fraud.alerts import Alert
from darooghe.fraud.columnar import ALERTED_FLAGS, Rows, judge
from darooghe.fraud.ruleset import DEFAULT_HISTORY, RuleHistory
from darooghe.fraud.txn import Txn
from darooghe.schema import FRAUD_RULES

__all__ = ["ALERTED_FLAGS", "CustomerWindow", "IngestResult"]


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
    """The recent transactions of one customer, enough to judge any transaction still to come:
    columns (`Rows`) in event-time order with the rules already alerted on each (ALERTED_FLAGS)."""

    def __init__(
        self,
        customer_id: str,
        held: Iterable[tuple[Txn, int]] = (),
        history: RuleHistory = DEFAULT_HISTORY,
    ) -> None:
        self.customer_id = customer_id
        self.history = history
        held = list(held)
        self._rows = Rows.from_txns([t for t, _ in held])
        self._rows.flags[:] = [flags for _, flags in held]
        if held:
            self._rows = judge(self._rows, Rows.empty(), -(2**62), {}, history).held

    def __len__(self) -> int:
        return len(self._rows)

    def held(self) -> list[tuple[Txn, int]]:
        """(transaction, alerted bits) in event-time order (simultaneous ones by transaction_id)."""
        rows = self._rows
        return list(zip(rows.txns(), rows.flags.tolist(), strict=True))

    def alerted_rules(self, transaction_id: str) -> set[str]:
        hit = np.flatnonzero(self._rows.tid == transaction_id)
        flags = int(self._rows.flags[hit[0]]) if len(hit) else 0
        return {rule for rule, bit in ALERTED_FLAGS.items() if flags & bit}

    def expiry_ms(self) -> int | None:
        """Event time after which nothing held can matter: the latest transaction + HORIZON + 1 ms
        (timers fire when the watermark reaches them; a transaction exactly HORIZON later than the
        latest one is still compared with it)."""
        if not len(self._rows):
            return None
        return int(self._rows.ms.max()) + self.history.horizon_ms + 1

    def evict(self, watermark_ms: int) -> int:
        """Drop transactions no transaction at or after the watermark can look back to."""
        result = judge(self._rows, Rows.empty(), watermark_ms, {}, self.history)
        self._rows = result.held
        return result.evicted

    def ingest(
        self,
        txns: Iterable[Txn],
        watermark_ms: int,
        average: float | None,
        detected_ms: int | None = None,
    ) -> IngestResult:
        txns = list(txns)
        for t in txns:
            if t.customer_id != self.customer_id:
                raise ValueError(
                    f"transaction {t.transaction_id} of {t.customer_id!r} given to the window of "
                    f"{self.customer_id!r}"
                )
        averages = {} if average is None else {self.customer_id: average}
        j = judge(
            self._rows, Rows.from_txns(txns), watermark_ms, averages, self.history, detected_ms
        )
        self._rows = j.held
        judged = {rule for rules in j.late_judged for rule in rules}
        return IngestResult(
            alerts=j.alerts,
            late=j.late.txns(),
            duplicates=j.duplicates.txns(),
            accepted=j.accepted.txns(),
            evicted=j.evicted,
            late_judged=tuple(r for r in FRAUD_RULES if r in judged),
        )
