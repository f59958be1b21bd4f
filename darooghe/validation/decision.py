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

The ingestion time is the Kafka record timestamp. A record without one (timestamp type
NOT_AVAILABLE, which our topics never produce) is judged against the validator's clock.
"""

from __future__ import annotations

import base64
import datetime as dt
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

    `raw` is the value as received, as text; a value that is not UTF-8 also carries its exact
    bytes in `raw_base64`. `errors` maps each code to a readable message with the values involved.
    """

    transaction_id: str | None
    error_codes: list[str]
    errors: dict[str, str]
    source: ErrorSource
    raw: str | None
    validated_at: str
    raw_base64: str | None = None

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
) -> Verdict:
    """The verdict on one record: its value and key as read at topic/partition/offset, with its
    record timestamp (epoch ms, the ingestion time; None when the record has none). Never raises.

    Flat arguments rather than a Source: this runs once per record on the validator's hot path.
    """
    if timestamp is not None and timestamp >= 0:
        ingestion_ms = timestamp
    else:
        ingestion_ms = epoch_ms(validated_at or dt.datetime.now(UTC))
    try:
        t = read_transaction(value) if type(value) is bytes else None
        if t is None:
            inspection = inspect_transaction(value)
            t = inspection.transaction
        if t is not None:
            event_ms = t.event_time_ms
            amount = amount_problem(t.amount, t.vat_amount, t.commission_amount, t.total_amount)
            clock = time_problem(event_ms, ingestion_ms)
            device = device_problem(t.payment_method, t.device_info)
            if amount is None and clock is None and device is None:
                return _new_verdict(
                    Verdict, (True, t.customer_id.encode(), t.to_json_bytes(), event_ms, ())
                )
            errors = {ERR_AMOUNT: amount, ERR_TIME: clock, ERR_DEVICE: device}
            transaction_id = t.transaction_id
        else:
            errors = _partial_rule_problems(inspection, ingestion_ms)
            errors[ERR_SCHEMA] = "; ".join(inspection.problems)
            transaction_id = inspection.transaction_id
    except Exception as exc:  # noqa: BLE001 - a poison record must not stop the stream
        transaction_id = None
        errors = {ERR_SCHEMA: f"value could not be read ({type(exc).__name__}: {exc})"}
    found = {code: errors[code] for code in ERROR_CODES if errors.get(code)}
    source = Source(topic, partition, offset, timestamp)
    return Verdict(
        False,
        key,
        error_log_value(transaction_id, found, source, value, ingestion_ms, validated_at),
        ingestion_ms,
        tuple(found),
    )


def decide_record(record: Record, topic: str, validated_at: dt.datetime | None = None) -> Verdict:
    """decide() for a record-file Record read from `topic` (the file mode and tests)."""
    return decide(
        record.value,
        topic,
        record.partition,
        record.offset,
        record.timestamp,
        None if record.key is None else record.key.encode(),
        validated_at,
    )


def _partial_rule_problems(inspection: Inspection, ingestion_ms: int) -> dict[str, str | None]:
    f = inspection.fields
    errors: dict[str, str | None] = {}
    if all(k in f for k in ("amount", "vat_amount", "commission_amount", "total_amount")):
        errors[ERR_AMOUNT] = amount_problem(
            f["amount"], f["vat_amount"], f["commission_amount"], f["total_amount"]
        )
    if "timestamp" in f:
        errors[ERR_TIME] = time_problem(epoch_ms(f["timestamp"]), ingestion_ms)
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
) -> bytes:
    raw, raw_base64 = _raw_text(value)
    record = ErrorLog(
        transaction_id=transaction_id,
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
    )
    return _encode(record)


def _raw_text(value: bytes | str | None) -> tuple[str | None, str | None]:
    if value is None or isinstance(value, str):
        return value, None
    try:
        return bytes(value).decode("utf-8"), None
    except UnicodeDecodeError:
        return bytes(value).decode("utf-8", errors="replace"), base64.b64encode(value).decode()
