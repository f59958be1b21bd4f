"""The stateful processor of the fraud job (`transformWithState`, event-time mode).

State is per customer, kept in a MapState keyed by customer_id; the grouping key of the operator is
a fixed bucket of customers (`customer_bucket`, BUCKETS of them) rather than the customer itself.
Why: PySpark's transformWithState pays about 0.2 ms of CPU per grouping key per micro-batch (a
round of calls between the JVM and the Python worker) — at a thousand events per second almost
every event belongs to a different customer, so per-customer grouping spent most of the job's CPU
on that overhead. A MapState read and write per customer costs less than half of it. BUCKETS is
part of the checkpoint: changing it needs a fresh checkpoint.

Per customer (MapState `customer_windows`, key customer_id): the customer's `CustomerWindow` — the
transactions still within reach of the rules, each with the rules already alerted on it, which is
also the seen-transaction_ids set that makes a redelivery count once — as compact JSON, and the
event time of its latest transaction.

Per bucket: one event-time timer (ValueState `next_scan` remembers it), SCAN_EVERY_MS of event time
after the watermark when it was registered. When the watermark passes it, every customer of the
bucket whose latest transaction is more than 5 minutes before the watermark is dropped: no
transaction still to come can be compared with anything it holds. Customers that keep paying are
trimmed on each input instead (`CustomerWindow.evict`). (State TTL is processing-time only and
would evict by wall clock, not event time.)

Rules and late handling live in `darooghe.fraud.window`; this class only moves windows in and out
of Spark state and turns results into output rows: kind "alert" (value = alert JSON), "late"
(event time before the watermark: value = its record, darooghe.fraud.late; judged by AMOUNT_ANOMALY
only) and "duplicate" (a redelivered transaction_id). The input deliberately carries no
watermark-marked column, so Spark hands late rows to the processor instead of dropping them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pyspark.sql import Column, Row
from pyspark.sql import functions as F
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle

from darooghe.fraud.late import late_value
from darooghe.fraud.profiles import ProfileSnapshot
from darooghe.fraud.rules import HORIZON_MS
from darooghe.fraud.txn import Txn, iso_ms
from darooghe.fraud.window import CustomerWindow

BUCKETS = 64
#: How often (in event time) a bucket looks for customers whose whole window has expired.
SCAN_EVERY_MS = 60_000
#: Columns the processor reads (the watermark column was projected away).
INPUT_COLUMNS = ("bucket", "customer_id", "transaction_id", "event_ms", "lat", "lng", "amount")
OUTPUT_SCHEMA = (
    "kind string, customer_id string, transaction_id string, rule string, alert_id string, "
    "event_ms long, value string"
)
#: `held` is the window as compact JSON, [[transaction_id, event_ms, lat, lng, amount, alerted
#: bits], ...]: a nested Spark struct costs several times more to convert on every read and write.
WINDOW_SCHEMA = "held string, latest_ms long"
ALERT, LATE, DUPLICATE = "alert", "late", "duplicate"


def customer_bucket(customer_id: Column) -> Column:
    """The grouping key: a stable hash of customer_id into BUCKETS buckets."""
    return F.pmod(F.hash(customer_id), F.lit(BUCKETS)).cast("int")


class FraudDetector(StatefulProcessor):
    """Runs the three fraud rules exactly, per customer, in event time."""

    def __init__(self, profiles_snapshot: str) -> None:
        self.profiles_snapshot = profiles_snapshot

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.windows = handle.getMapState("customer_windows", "customer_id string", WINDOW_SCHEMA)
        self.next_scan = handle.getValueState("next_scan", "timer_ms long")
        # Re-read per task: a refreshed snapshot is picked up by the next micro-batch.
        self.averages = ProfileSnapshot(self.profiles_snapshot).read()

    def handleInputRows(self, key, rows, timerValues) -> Iterator[Row]:
        watermark = timerValues.getCurrentWatermarkInMs()
        by_customer: dict[str, list[Txn]] = {}
        # Rows are tuples in INPUT_COLUMNS order; positional access is much cheaper than by name.
        for _, cid, tid, ms, lat, lng, amount in rows:
            by_customer.setdefault(cid, []).append(Txn(tid, cid, ms, lat, lng, amount))
        for customer_id, txns in by_customer.items():
            window, stored = self._load(customer_id)
            result = window.ingest(txns, watermark, self.averages.get(customer_id))
            if stored or len(window):
                self._save(customer_id, window)
            yield from self._rows(customer_id, result, watermark)
        if not self.next_scan.exists():
            self._schedule_scan(watermark)

    def handleExpiredTimer(self, key, timerValues, expiredTimerInfo) -> Iterator[Row]:
        watermark = timerValues.getCurrentWatermarkInMs()
        cutoff = watermark - HORIZON_MS
        customers, gone = 0, []
        for k, (_, latest_ms) in self.windows.iterator():
            customers += 1
            if latest_ms < cutoff:
                gone.append(k)
        for k in gone:
            self.windows.removeKey(k)
        if customers > len(gone):
            self._schedule_scan(watermark)
        else:
            self.next_scan.clear()
        return iter([])

    def close(self) -> None:
        pass

    # --- helpers ------------------------------------------------------------------------------
    def _schedule_scan(self, watermark: int) -> None:
        at = max(watermark, 0) + SCAN_EVERY_MS
        self.handle.registerTimer(at)
        self.next_scan.update((at,))

    def _load(self, customer_id: str) -> tuple[CustomerWindow, bool]:
        """The customer's window, and whether it was in state."""
        stored = self.windows.getValue((customer_id,))  # None for a customer without state
        if stored is None:
            return CustomerWindow(customer_id), False
        held = [
            (Txn(tid, customer_id, ms, lat, lng, amount), flags)
            for tid, ms, lat, lng, amount, flags in json.loads(stored[0])
        ]
        return CustomerWindow(customer_id, held), True

    def _save(self, customer_id: str, window: CustomerWindow) -> None:
        if not len(window):
            self.windows.removeKey((customer_id,))
            return
        held = [
            [t.transaction_id, t.event_ms, t.lat, t.lng, t.amount, flags]
            for t, flags in window.held()
        ]
        latest = held[-1][1]
        self.windows.updateValue((customer_id,), (json.dumps(held, separators=(",", ":")), latest))

    @staticmethod
    def _rows(customer_id: str, result, watermark: int) -> Iterator[Row]:
        for alert in result.alerts:
            yield Row(
                kind=ALERT,
                customer_id=customer_id,
                transaction_id=alert.transaction_id,
                rule=alert.rule,
                alert_id=alert.alert_id,
                event_ms=alert.event_ms,
                value=alert.to_json(),
            )
        if result.late:
            late_ids = {t.transaction_id for t in result.late}
            raised: dict[str, list] = {}
            for alert in result.alerts:
                if alert.transaction_id in late_ids:
                    raised.setdefault(alert.transaction_id, []).append(alert)
            for t in result.late:
                value = late_value(
                    t, watermark, result.late_judged, raised.get(t.transaction_id, ())
                )
                yield FraudDetector._other(LATE, t, json.dumps(value, separators=(",", ":")))
        for t in result.duplicates:
            value = {
                "transaction_id": t.transaction_id,
                "customer_id": customer_id,
                "event_time": iso_ms(t.event_ms),
                "watermark": iso_ms(watermark),
                "behind_watermark_ms": watermark - t.event_ms,
            }
            yield FraudDetector._other(DUPLICATE, t, json.dumps(value))

    @staticmethod
    def _other(kind: str, t: Txn, value: str) -> Row:
        return Row(
            kind=kind,
            customer_id=t.customer_id,
            transaction_id=t.transaction_id,
            rule=None,
            alert_id=None,
            event_ms=t.event_ms,
            value=value,
        )
