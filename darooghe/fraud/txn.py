"""The slice of a valid transaction the fraud rules look at, and event-time conversions.

Event time is the value's `timestamp` (ISO-8601 UTC with `Z`, milliseconds), held as epoch
milliseconds so Python and Spark (`unix_millis`) agree to the millisecond.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import NamedTuple

#: Epoch milliseconds -> '2026-03-23T14:35:22.145Z': the fraud modules' name for the one formatter.
from darooghe.schema import format_epoch_ms as iso_ms  # noqa: F401


class TransactionValueError(ValueError):
    """A transaction value the fraud rules cannot read; the message names the field and value."""


def parse_event_ms(timestamp: str) -> int:
    """'2026-03-23T14:35:22.145Z' -> epoch milliseconds (a zone-less value is taken as UTC)."""
    try:
        dt = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        raise TransactionValueError(
            f"timestamp {timestamp!r} is not ISO-8601 (expected e.g. 2026-03-23T14:35:22.145Z)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    # Integer arithmetic: float timestamps lose the millisecond for far dates.
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class Txn(NamedTuple):
    """One transaction as the rules see it (a tuple: the streaming job builds millions of them)."""

    transaction_id: str
    customer_id: str
    event_ms: int
    lat: float
    lng: float
    amount: int
    #: The record's risk_level (carried into alerts for the decision score); None when unknown.
    risk_level: int | None = None

    @classmethod
    def from_value(cls, value: dict | str) -> Txn:
        """From a valid-transaction JSON value (a dict or its text)."""
        obj = json.loads(value) if isinstance(value, str) else value
        try:
            loc = obj["location"]
            return cls(
                transaction_id=str(obj["transaction_id"]),
                customer_id=str(obj["customer_id"]),
                event_ms=parse_event_ms(obj["timestamp"]),
                lat=float(loc["lat"]),
                lng=float(loc["lng"]),
                amount=int(obj["amount"]),
                risk_level=None if obj.get("risk_level") is None else int(obj["risk_level"]),
            )
        except (KeyError, TypeError) as exc:
            raise TransactionValueError(
                f"transaction value lacks a field the fraud rules need ({exc!r}): {str(obj)[:200]}"
            ) from None
