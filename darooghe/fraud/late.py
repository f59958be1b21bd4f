"""The record of a transaction that reached the fraud job behind its event-time watermark.

Published on `darooghe.late_transactions` (key customer_id), or in file mode written to a JSON-lines
file beside the alerts. Such a transaction is not held in the customer's window, so the windowed
rules (VELOCITY, GEO_IMPOSSIBLE) do not judge it: the transactions it would be compared with may be
evicted already. AMOUNT_ANOMALY needs none and does judge it; its alert goes with the others.

A consumer that needs one record per transaction deduplicates on transaction_id: a micro-batch
re-run from the checkpoint publishes its late records again (at-least-once, like the alerts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from darooghe.fraud.alerts import Alert
from darooghe.fraud.rules import RULES
from darooghe.fraud.txn import Txn, iso_ms


def late_value(t: Txn, watermark_ms: int, judged: Iterable[str], alerts: Iterable[Alert]) -> dict:
    """The transaction as the job has it, how far behind the watermark it was, the rules that
    judged it and the alerts they raised."""
    judged = list(judged)
    return {
        "transaction_id": t.transaction_id,
        "customer_id": t.customer_id,
        "event_time": iso_ms(t.event_ms),
        "amount": t.amount,
        "location": {"lat": t.lat, "lng": t.lng},
        "watermark": iso_ms(watermark_ms),
        "behind_watermark_ms": watermark_ms - t.event_ms,
        "judged_by": judged,
        "not_judged_by": [rule for rule in RULES if rule not in judged],
        "alerts": [{"rule": a.rule, "alert_id": a.alert_id} for a in alerts],
    }


def with_batch_id(value: str, batch_id: int) -> str:
    """A late value as published: with the id of the micro-batch it arrived in."""
    return json.dumps({"batch_id": batch_id, **json.loads(value)}, separators=(",", ":"))
