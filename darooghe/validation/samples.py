"""Hand-built sample records with known verdicts, for the validator's tests and benchmark.

Independent of the generator on purpose: the validator can be checked (and benchmarked) on its own,
and each sample says which error codes it must get. Valid samples use the real commission and VAT
formulas, so they also stand for what the generator writes.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import NamedTuple

from darooghe import commission
from darooghe.schema import (
    COMMISSION_TYPES,
    CUSTOMER_TYPES,
    ERR_AMOUNT,
    ERR_DEVICE,
    ERR_SCHEMA,
    ERR_TIME,
    FAILURE_REASONS,
    MERCHANT_CATEGORIES,
    MOBILE_OSES,
    PAYMENT_METHODS,
    format_epoch_ms,
)

DAY_MS = 86_400_000


class Sample(NamedTuple):
    key: bytes | None
    value: bytes | None
    timestamp: int  # the Kafka record timestamp (ingestion time)
    expected_codes: tuple[str, ...]  # () for a valid record


def transaction_dict(rng: random.Random, event_ms: int, customer: int | None = None) -> dict:
    """A valid transaction as a dict in FIELDS order."""
    method = rng.choice(PAYMENT_METHODS)
    amount = rng.randint(10_000, 5_000_000)
    ctype = rng.choice(COMMISSION_TYPES)
    fee = commission.commission(ctype, amount)
    vat = commission.vat(amount)
    status = rng.choices(("approved", "declined", "pending"), (90, 5, 5))[0]
    device = (
        {"os": rng.choice(MOBILE_OSES), "app_version": "2.4.1", "device_model": "Pixel 9"}
        if method in ("online", "mobile")
        else {}
    )
    return {
        "transaction_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "timestamp": format_epoch_ms(event_ms),
        "customer_id": f"cust_{rng.randrange(1000) if customer is None else customer}",
        "merchant_id": f"merch_{rng.randrange(50)}",
        "merchant_category": rng.choice(MERCHANT_CATEGORIES),
        "payment_method": method,
        "amount": amount,
        "location": {
            "lat": round(35.7 + rng.uniform(-0.1, 0.1), 4),
            "lng": round(51.4 + rng.uniform(-0.1, 0.1), 4),
        },
        "device_info": device,
        "status": status,
        "commission_type": ctype,
        "commission_amount": fee,
        "vat_amount": vat,
        "total_amount": commission.total(amount, fee, vat),
        "customer_type": rng.choice(CUSTOMER_TYPES),
        "risk_level": rng.randint(1, 5),
        "failure_reason": rng.choice(FAILURE_REASONS) if status == "declined" else None,
    }


def encode(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# Each injector turns a valid transaction (and its record timestamp) into an invalid sample.
def _bad_total(rng, t, ts):
    t["total_amount"] += rng.choice((-1, 1, 1000))
    return encode(t), ts, (ERR_AMOUNT,)


# Clock drift moves the event time, not the record timestamp: the broker refuses record timestamps
# more than an hour in the future (log.message.timestamp.after.max.ms).
def _future(rng, t, ts):
    t["timestamp"] = format_epoch_ms(ts + rng.randint(1, 3_600_000))
    return encode(t), ts, (ERR_TIME,)


def _too_old(rng, t, ts):
    t["timestamp"] = format_epoch_ms(ts - DAY_MS - rng.randint(1, 3 * DAY_MS))
    return encode(t), ts, (ERR_TIME,)


def _desktop_os(rng, t, ts):
    t["payment_method"] = "mobile"
    t["device_info"] = {
        "os": rng.choice(("Windows", "Linux", "macOS", "ios")),
        "app_version": "1.0",
        "device_model": "PC",
    }
    return encode(t), ts, (ERR_DEVICE,)


def _not_json(rng, t, ts):
    return encode(t)[: rng.randint(1, 60)], ts, (ERR_SCHEMA,)


def _missing_field(rng, t, ts):
    del t[rng.choice(("merchant_id", "status", "location", "customer_type", "risk_level"))]
    return encode(t), ts, (ERR_SCHEMA,)


def _wrong_type(rng, t, ts):
    name = rng.choice(("amount", "risk_level", "vat_amount"))
    t[name] = str(t[name])
    return encode(t), ts, (ERR_SCHEMA,)


INJECTORS: dict[str, Callable] = {
    "bad_total": _bad_total,
    "future": _future,
    "too_old": _too_old,
    "desktop_os": _desktop_os,
    "not_json": _not_json,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
}


def samples(
    n: int, start_ms: int, invalid_share: float = 0.1, seed: int = 0, spacing_ms: int = 1000
) -> list[Sample]:
    """`n` records `spacing_ms` apart from `start_ms`, about `invalid_share` of them invalid."""
    rng = random.Random(seed)
    names = sorted(INJECTORS)
    out = []
    for i in range(n):
        ts = start_ms + i * spacing_ms
        t = transaction_dict(rng, ts)
        key = t["customer_id"].encode()
        if rng.random() < invalid_share:
            value, ts, codes = INJECTORS[rng.choice(names)](rng, t, ts)
            out.append(Sample(key, value, ts, codes))
        else:
            out.append(Sample(key, encode(t), ts, ()))
    return out
