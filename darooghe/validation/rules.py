"""The business rules of ingestion validation, one small function each.

Each takes only the values it needs and returns None when the rule holds, else a readable message
naming the values involved. They are called on a whole Transaction, and also on the fields that
did convert when the rest of the record failed its schema (see decision.decide).

Decisions the specification leaves open, taken here:
- ERR_TIME also holds the event time against the validator's own clock, allowing the
  clock-skew allowance (darooghe.validation.clock): the record timestamp is set by the producer,
  and the broker accepts one up to its message.timestamp.after.max.ms ahead.
- ERR_TIME compares at millisecond precision, the unit of Kafka record timestamps. "Not after the
  ingestion time" means 1 ms after fails; "not more than 24 hours before" means exactly 24 h
  before passes and 24 h + 1 ms fails.
- ERR_DEVICE is case-sensitive: the specification lists the values `iOS` and `Android`, the schema's enums
  are case-sensitive too, and a validator that silently rewrote "ios" would hide the upstream bug
  it exists to catch. So "ios", "ANDROID" or " iOS" fail, as does a mobile payment without an os.
  Only mobile payments are constrained; online payments may come from any os.
"""

from __future__ import annotations

from darooghe.schema import MOBILE_OSES, DeviceInfo, format_epoch_ms
from darooghe.validation.clock import DEFAULT_CLOCK_SKEW_MS

#: How far before its ingestion time an event may be: exactly this much still passes.
MAX_EVENT_AGE_MS = 24 * 60 * 60 * 1000
_MOBILE_OSES = frozenset(MOBILE_OSES)


def amount_problem(
    amount: int, vat_amount: int, commission_amount: int, total_amount: int
) -> str | None:
    """ERR_AMOUNT: total_amount == amount + vat_amount + commission_amount."""
    expected = amount + vat_amount + commission_amount
    if total_amount == expected:
        return None
    return (
        f"total_amount {total_amount} != amount {amount} + vat_amount {vat_amount} + "
        f"commission_amount {commission_amount} = {expected} (off by {total_amount - expected:+d})"
    )


def time_problem(
    event_ms: int,
    ingestion_ms: int,
    now_ms: int | None = None,
    skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
) -> str | None:
    """ERR_TIME: the event time is not after the ingestion time nor more than 24 h before it,
    and not more than skew_ms after the validator's clock now_ms (when given)."""
    if event_ms > ingestion_ms:
        return (
            f"timestamp {format_epoch_ms(event_ms)} is {format_duration(event_ms - ingestion_ms)} "
            f"after the ingestion time {format_epoch_ms(ingestion_ms)} (the Kafka record timestamp)"
        )
    if now_ms is not None and event_ms - now_ms > skew_ms:
        return (
            f"timestamp {format_epoch_ms(event_ms)} is {format_duration(event_ms - now_ms)} "
            f"after the validator's clock {format_epoch_ms(now_ms)}, more than the clock-skew "
            f"allowance of {format_duration(skew_ms)} (DAROOGHE_CLOCK_SKEW_MS)"
        )
    if ingestion_ms - event_ms > MAX_EVENT_AGE_MS:
        return (
            f"timestamp {format_epoch_ms(event_ms)} is {format_duration(ingestion_ms - event_ms)} "
            f"before the ingestion time {format_epoch_ms(ingestion_ms)}, more than the 24 h allowed"
        )
    return None


def device_problem(payment_method: str, device_info: DeviceInfo) -> str | None:
    """ERR_DEVICE: a mobile payment comes from iOS or Android (exact spelling)."""
    if payment_method != "mobile" or device_info.os in _MOBILE_OSES:
        return None
    got = "no os" if device_info.os is None else f"os {device_info.os!r}"
    return f"payment_method 'mobile' needs device_info.os in {', '.join(MOBILE_OSES)}; got {got}"


def format_duration(ms: int) -> str:
    """1 ms, 2.500 s, 24 h 00 min 00.001 s."""
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3f} s"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours} h {minutes:02d} min {rest / 1000:06.3f} s"
