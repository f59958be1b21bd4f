"""Injected invalid events: each breaks exactly one validation rule (darooghe.validation.rules).

Rates are parameters (ERR_AMOUNT_RATE, ERR_TIME_RATE, ERR_DEVICE_RATE, ERR_SCHEMA_RATE, 0.5% each
by default); the `darooghe-label` header names the rule. Every other rule still holds on the
record, so a validator that reports every violated rule reports exactly this one:

- ERR_AMOUNT: total_amount off by a non-zero amount (±1 IRR up to ±5% of the amount).
- ERR_TIME: the event time is 10 min to 3 days after the record (ingestion) timestamp, or 24 h
  10 min to 10 days before it — clear of the 24-hour bound by ten minutes either way.
- ERR_DEVICE: a mobile payment whose device_info names the customer's computer (Windows, macOS,
  Linux) instead of a phone.
- ERR_SCHEMA, one of: the JSON text cut short (unreadable), a missing field, a field of the wrong
  type, an unknown enum value, a zero amount (with zero commission, VAT and total, so the totals
  still add up). Fields the other rules read (timestamp, amounts, payment_method, device_info) are
  left whole, except the zero amount.
"""

from __future__ import annotations

import json

import numpy as np

from darooghe.generator.population import CITIES

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
FUTURE_DRIFT_MS = (10 * MINUTE_MS, 3 * DAY_MS)
PAST_DRIFT_MS = (DAY_MS + 10 * MINUTE_MS, 10 * DAY_MS)

#: ERR_SCHEMA variants, in the order the variant number selects them
SCHEMA_VARIANTS = ("bad_json", "missing_field", "wrong_type", "unknown_enum", "zero_amount")
MISSING_FIELDS = ("merchant_id", "merchant_category", "customer_type", "risk_level", "location")
UNKNOWN_ENUMS = (("merchant_category", "gambling"), ("payment_method", "crypto"), ("customer_type", "vip"))


def amount_deltas(rng: np.random.Generator, amounts: np.ndarray) -> np.ndarray:
    """Non-zero errors for total_amount: ±[1, max(1, 5% of the amount)]."""
    size = np.maximum(1, amounts // 20)
    magnitude = 1 + np.floor(rng.random(len(amounts)) * size).astype(np.int64)
    sign = np.where(rng.random(len(amounts)) < 0.5, -1, 1)
    return sign * magnitude


def time_drifts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Clock drift in ms, half into the future and half more than a day into the past."""
    future = rng.random(n) < 0.5
    ahead = rng.integers(*FUTURE_DRIFT_MS, size=n)
    behind = -rng.integers(*PAST_DRIFT_MS, size=n)
    return np.where(future, ahead, behind)


def break_schema(value: str, variant: int, choice: int) -> str:
    """A well-formed event JSON turned into one malformed in the way `variant` selects."""
    kind = SCHEMA_VARIANTS[variant]
    if kind == "bad_json":
        # cut strictly inside the text: an object missing its closing brace is never JSON
        return value[: 1 + choice % (len(value) - 2)]
    event = json.loads(value)
    if kind == "missing_field":
        del event[MISSING_FIELDS[choice % len(MISSING_FIELDS)]]
    elif kind == "wrong_type":
        which = choice % 4
        if which == 0:
            event["risk_level"] = "high"
        elif which == 1:
            event["location"] = CITIES[choice % len(CITIES)].name
        elif which == 2:
            event["merchant_id"] = int(event["merchant_id"].split("_")[1])
        else:
            event["customer_type"] = 1 + choice % 3
    elif kind == "unknown_enum":
        name, bad = UNKNOWN_ENUMS[choice % len(UNKNOWN_ENUMS)]
        event[name] = bad
    else:  # zero_amount
        event.update(amount=0, commission_amount=0, vat_amount=0, total_amount=0)
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))
