"""Poison pills: whatever the size of a record or of one of its fields, its error record stays
bounded (below the producer's 1 MB default), says what was cut and keeps the payload once or a
pointer to its source offset."""

from __future__ import annotations

import base64
import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darooghe.schema import ERR_SCHEMA
from darooghe.validation import ErrorLog, decide
from darooghe.validation.limits import (
    DEFAULT_MAX_RECORD_BYTES,
    PRODUCER_MAX_MESSAGE_BYTES,
    error_record_bound,
)
from darooghe.validation.samples import encode, transaction_dict

EVENT_MS = 1774276522145
TOPIC = "darooghe.transactions"


def _verdict(value: bytes, key: bytes | None = b"k", **kw):
    return decide(value, TOPIC, 3, 77, EVENT_MS, key, **kw)


def _payload_kept_once_or_pointed_to(log: ErrorLog, value: bytes) -> None:
    """The exact input is in the error record once, or the record says where to read it."""
    assert (log.source.topic, log.source.partition, log.source.offset) == (TOPIC, 3, 77)
    if log.raw_truncated:
        assert log.raw_bytes == len(value) and log.raw_base64 is None
        assert f"[truncated: {len(value):,} bytes]" in log.raw
    elif log.raw_base64 is not None:
        assert base64.b64decode(log.raw_base64) == value
        assert len(log.raw) < 2 * 1024  # a readable preview, not a second copy
    else:
        assert log.raw.encode("utf-8", errors="surrogatepass") == value


def test_400kb_of_non_utf8_bytes_give_a_small_error_record():
    value = b"\xff" * 400_000  # was a 1.73 MB error record
    verdict = _verdict(value)
    log = ErrorLog.decode(verdict.value)
    assert verdict.error_codes == (ERR_SCHEMA,)
    assert "400,000 bytes" in log.errors[ERR_SCHEMA] and "limit" in log.errors[ERR_SCHEMA]
    assert len(verdict.value) < 8 * 1024
    _payload_kept_once_or_pointed_to(log, value)


def test_huge_transaction_id_is_truncated_with_a_marker():
    obj = transaction_dict(random.Random(1), EVENT_MS)
    obj["transaction_id"] = "x" * 60_000  # under the record limit, so the payload is kept
    value = encode(obj)
    verdict = _verdict(value)
    log = ErrorLog.decode(verdict.value)
    assert verdict.error_codes == (ERR_SCHEMA,)
    assert (
        log.transaction_id.startswith("xxx") and "[truncated: 60,000 chars]" in log.transaction_id
    )
    assert len(log.transaction_id) < 300
    assert all(len(d) < 1200 for d in log.errors.values())
    assert "[truncated:" in log.errors[ERR_SCHEMA]
    _payload_kept_once_or_pointed_to(log, value)
    assert len(verdict.value) < len(value) + 4 * 1024  # the payload once, plus bounded text


def test_record_over_the_configured_size_is_err_schema_unparsed():
    obj = transaction_dict(random.Random(2), EVENT_MS)
    value = encode(obj)
    assert _verdict(value, max_record_bytes=len(value)).valid  # exactly at the limit passes
    verdict = _verdict(value, max_record_bytes=len(value) - 1)
    log = ErrorLog.decode(verdict.value)
    assert verdict.error_codes == (ERR_SCHEMA,) and log.transaction_id is None
    assert f"{len(value):,} bytes" in log.errors[ERR_SCHEMA]
    _payload_kept_once_or_pointed_to(log, value)


def test_huge_key_is_not_echoed_in_full():
    verdict = _verdict(b"not json", key=b"k" * 500_000)
    assert verdict.key is not None and len(verdict.key) <= 256


def test_the_bound_fits_the_producer_default_for_the_default_limit():
    assert error_record_bound(DEFAULT_MAX_RECORD_BYTES) < PRODUCER_MAX_MESSAGE_BYTES


def _big_records():
    """Records up to 2 MB: random bytes, one field blown up, control characters (6x when escaped)."""
    size = st.integers(0, 2_000_000)
    field = st.sampled_from(["transaction_id", "merchant_category", "customer_id", "location", "x"])
    filler = st.sampled_from(["x", "\x01", "\u00e9", '"'])

    def blown(args):
        seed, name, ch, n = args
        obj = transaction_dict(random.Random(seed), EVENT_MS)
        obj[name] = ch * n
        return encode(obj)

    return st.one_of(
        size.map(lambda n: os.urandom(n)),
        size.map(lambda n: b"\x01" * n),
        st.tuples(st.integers(0, 100), field, filler, size).map(blown),
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_big_records())
def test_any_record_up_to_2mb_gives_one_bounded_error_record(value):
    verdict = _verdict(value)
    assert len(verdict.value) <= error_record_bound(DEFAULT_MAX_RECORD_BYTES)
    if not verdict.valid:
        _payload_kept_once_or_pointed_to(ErrorLog.decode(verdict.value), value)
