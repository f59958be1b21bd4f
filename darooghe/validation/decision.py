"""`decide`: the one function that gives a consumed record its verdict and its one output record.

The Kafka service, the file mode and `--show-one` all call it, so they cannot disagree. It never
raises and always returns exactly one output: a value that cannot be read at all is an ERR_SCHEMA
error-log record like any other malformed value.

- Valid: the normalised transaction (darooghe.schema.Transaction.to_json_bytes) for
  darooghe.valid_transactions, key = customer_id, record timestamp = the event time, so that
  downstream event-time processing and retention see the transaction's own time.
- Invalid: an `ErrorLog` value for darooghe.error_logs, keyed by the input's key and timestamped
  with the input's record timestamp (the ingestion time).

When the schema fails, the other rules still run on whichever of their input fields did convert
(ERR_AMOUNT needs the four amounts, ERR_TIME the timestamp, ERR_DEVICE payment_method and
device_info): a record with a bad enum *and* a wrong total reports both, while a rule whose inputs
are unreadable is not guessed at. Codes are listed in the order of darooghe.schema.ERROR_CODES.

Every error record is bounded (darooghe.validation.limits): a value over the record limit is
refused unparsed, echoed texts are cut with a size marker, and the payload is kept once or, when
too big, pointed to by its source offset.

The ingestion time is the Kafka record timestamp. A record without one (timestamp type
NOT_AVAILABLE, which our topics never produce) is judged against the validator's clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from typing import NamedTuple

import msgspec

from darooghe.records import Record
from darooghe.schema import (
    ERR_AMOUNT,
    ERR_DEVICE,
    ERR_SCHEMA,
    ERR_TIME,
    ERROR_CODES,
    UTC,
    Inspection,
    epoch_ms,
    format_epoch_ms,
    format_timestamp,
    inspect_transaction,
    read_transaction,
)
from darooghe.validation.clock import DEFAULT_CLOCK_SKEW_MS
from darooghe.validation.limits import (
    DEFAULT_MAX_RECORD_BYTES,
    DETAIL_CHARS,
    ID_CHARS,
    PREVIEW_CHARS,
    truncate_key,
    truncate_text,
)
from darooghe.validation.rules import amount_problem, device_problem, time_problem


class Source(NamedTuple):
    """Where a record was read: its topic, partition, offset and record timestamp (epoch ms).

    What an error log's `source` reports.
    """

    topic: str
    partition: int | None
    offset: int | None
    timestamp: int | None


class Verdict(NamedTuple):
    """The one output record of one input: where it goes and exactly what is written."""

    valid: bool
    key: bytes | None
    value: bytes
    timestamp: int
    error_codes: tuple[str, ...]


class ErrorSource(msgspec.Struct, frozen=True):
    topic: str
    partition: int | None
    offset: int | None
    timestamp: str | None  # ISO-8601 UTC `Z` with milliseconds
    timestamp_ms: int | None


class ErrorLog(msgspec.Struct, frozen=True, omit_defaults=True):
    """The value of a darooghe.error_logs record; decode one with `ErrorLog.decode(value)`.

    `raw` is the value as received, as text; a value that is not UTF-8 carries its exact bytes
    in `raw_base64` and only a readable preview in `raw`. A value over the record limit is not
    embedded: `raw` is a preview, `raw_truncated` is true, `raw_bytes` its size, and `source`
    points to the original. `errors` maps each code to a readable message with the values
    involved (each cut to a bounded length, with a marker, like `transaction_id`).
    """

    transaction_id: str | None
    error_codes: list[str]
    errors: dict[str, str]
    source: ErrorSource
    raw: str | None
    validated_at: str
    raw_base64: str | None = None
    raw_truncated: bool = False
    raw_bytes: int | None = None

    @classmethod
    def decode(cls, value: bytes | str) -> ErrorLog:
        return _ERROR_LOG_DECODER.decode(value)


_ERROR_LOG_DECODER = msgspec.json.Decoder(ErrorLog)
#: Builds a Verdict without NamedTuple's Python-level __new__ (the valid path runs per record).
_new_verdict = tuple.__new__
_encode = msgspec.json.Encoder().encode


def decide(
    value: bytes | str | None,
    topic: str,
    partition: int | None,
    offset: int | None,
    timestamp: int | None,
    key: bytes | None = None,
    validated_at: dt.datetime | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
) -> Verdict:
    """The verdict on one record: its value and key as read at topic/partition/offset, with its
    record timestamp (epoch ms, the ingestion time; None when the record has none). Never raises.
    A value longer than max_record_bytes is ERR_SCHEMA, unparsed; an event time more than
    clock_skew_ms after the validator's clock (validated_at, default now) is ERR_TIME.

    Flat arguments rather than a Source: this runs once per record on the validator's hot path.
    """
    now_ms = time.time_ns() // 1_000_000 if validated_at is None else epoch_ms(validated_at)
    ingestion_ms = timestamp if timestamp is not None and timestamp >= 0 else now_ms
    try:
        size = _size(value)
        if size > max_record_bytes:
            raise _Oversized(
                f"value is {size:,} bytes, over the limit of {max_record_bytes:,} bytes per record "
                "(DAROOGHE_MAX_RECORD_BYTES); not parsed"
            )
        t = read_transaction(value) if type(value) is bytes else None
        if t is None:
            inspection = inspect_transaction(value)
            t = inspection.transaction
        if t is not None:
            event_ms = t.event_time_ms
            amount = amount_problem(t.amount, t.vat_amount, t.commission_amount, t.total_amount)
            clock = time_problem(event_ms, ingestion_ms, now_ms, clock_skew_ms)
            device = device_problem(t.payment_method, t.device_info)
            if amount is None and clock is None and device is None:
                return _new_verdict(
                    Verdict, (True, t.customer_id.encode(), t.to_json_bytes(), event_ms, ())
                )
            errors = {ERR_AMOUNT: amount, ERR_TIME: clock, ERR_DEVICE: device}
            transaction_id = t.transaction_id
        else:
            errors = _partial_rule_problems(inspection, ingestion_ms, now_ms, clock_skew_ms)
            errors[ERR_SCHEMA] = "; ".join(inspection.problems)
            transaction_id = inspection.transaction_id
    except _Oversized as exc:
        transaction_id = None
        errors = {ERR_SCHEMA: str(exc)}
    except Exception as exc:  # noqa: BLE001 - a poison record must not stop the stream
        transaction_id = None
        errors = {ERR_SCHEMA: f"value could not be read ({type(exc).__name__}: {exc})"}
    found = {
        code: truncate_text(errors[code], DETAIL_CHARS) for code in ERROR_CODES if errors.get(code)
    }
    source = Source(topic, partition, offset, timestamp)
    value_out = error_log_value(
        transaction_id, found, source, value, ingestion_ms, validated_at, max_record_bytes
    )
    return Verdict(False, truncate_key(key), value_out, ingestion_ms, tuple(found))


class _Oversized(ValueError):
    """A value over the record limit (its message is the ERR_SCHEMA detail)."""


def _size(value: bytes | str | None) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8", errors="surrogatepass"))
    return len(value)


def unwritable_verdict(
    verdict: Verdict,
    topic: str,
    partition: int | None,
    offset: int | None,
    timestamp: int | None,
    value: bytes | None,
    reason: str,
) -> Verdict:
    """The error record that replaces an output the producer refused for good (too large).

    It carries ERR_SCHEMA with `reason` (plus the codes the record already had), a short preview
    of the input and its source offset, never the payload, so it always fits.
    """
    errors = {} if verdict.valid else dict(ErrorLog.decode(verdict.value).errors)
    errors[ERR_SCHEMA] = "; ".join(filter(None, (errors.get(ERR_SCHEMA), reason)))
    found = {
        code: truncate_text(errors[code], DETAIL_CHARS) for code in ERROR_CODES if errors.get(code)
    }
    source = Source(topic, partition, offset, timestamp)
    value_out = error_log_value(None, found, source, value, verdict.timestamp, None, 0)
    return Verdict(False, truncate_key(verdict.key), value_out, verdict.timestamp, tuple(found))


def decide_record(
    record: Record,
    topic: str,
    validated_at: dt.datetime | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
) -> Verdict:
    """decide() for a record-file Record read from `topic` (the file mode and tests)."""
    return decide(
        record.value,
        topic,
        record.partition,
        record.offset,
        record.timestamp,
        None if record.key is None else record.key.encode(),
        validated_at,
        max_record_bytes,
        clock_skew_ms,
    )


def _partial_rule_problems(
    inspection: Inspection, ingestion_ms: int, now_ms: int, clock_skew_ms: int
) -> dict[str, str | None]:
    f = inspection.fields
    errors: dict[str, str | None] = {}
    if all(k in f for k in ("amount", "vat_amount", "commission_amount", "total_amount")):
        errors[ERR_AMOUNT] = amount_problem(
            f["amount"], f["vat_amount"], f["commission_amount"], f["total_amount"]
        )
    if "timestamp" in f:
        errors[ERR_TIME] = time_problem(
            epoch_ms(f["timestamp"]), ingestion_ms, now_ms, clock_skew_ms
        )
    if "payment_method" in f and "device_info" in f:
        errors[ERR_DEVICE] = device_problem(f["payment_method"], f["device_info"])
    return errors


def error_log_value(
    transaction_id: str | None,
    errors: dict[str, str],
    source: Source,
    value: bytes | str | None,
    ingestion_ms: int,
    validated_at: dt.datetime | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> bytes:
    """The bounded error-log value of one rejected record (see darooghe.validation.limits)."""
    raw, raw_base64, raw_bytes = _raw_fields(value, max_record_bytes)
    record = ErrorLog(
        transaction_id=None if transaction_id is None else truncate_text(transaction_id, ID_CHARS),
        error_codes=list(errors),
        errors=errors,
        source=ErrorSource(
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            timestamp=format_epoch_ms(ingestion_ms) if ingestion_ms == source.timestamp else None,
            timestamp_ms=source.timestamp if ingestion_ms == source.timestamp else None,
        ),
        raw=raw,
        validated_at=format_timestamp(validated_at or dt.datetime.now(UTC)),
        raw_base64=raw_base64,
        raw_truncated=raw_bytes is not None,
        raw_bytes=raw_bytes,
    )
    return _encode(record)


def _raw_fields(
    value: bytes | str | None, max_record_bytes: int
) -> tuple[str | None, str | None, int | None]:
    """(raw, raw_base64, raw_bytes): the payload once, or a preview and its size when too big."""
    if value is None:
        return None, None, None
    data = value.encode("utf-8", errors="surrogatepass") if isinstance(value, str) else bytes(value)
    if len(data) > max_record_bytes:
        preview = data[:PREVIEW_CHARS].decode("utf-8", errors="replace")[:PREVIEW_CHARS]
        return f"{preview}… [truncated: {len(data):,} bytes]", None, len(data)
    if isinstance(value, str):
        return value, None, None
    try:
        return data.decode("utf-8"), None, None
    except UnicodeDecodeError:
        preview = data.decode("utf-8", errors="replace")
        if len(preview) > PREVIEW_CHARS:
            preview = f"{preview[:PREVIEW_CHARS]}… [preview; the exact bytes are raw_base64]"
        return preview, base64.b64encode(data).decode(), None
