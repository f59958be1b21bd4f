"""The transaction event schema of `darooghe.transactions`: one definition.

Field order here is the order the generator writes and the validator normalises to.
"""

from __future__ import annotations

MERCHANT_CATEGORIES = ("retail", "food_service", "entertainment", "transportation", "government")
PAYMENT_METHODS = ("online", "pos", "mobile", "nfc")
STATUSES = ("approved", "declined", "pending")
COMMISSION_TYPES = ("flat", "progressive", "tiered")
CUSTOMER_TYPES = ("individual", "CIP", "business")
FAILURE_REASONS = ("cancelled", "insufficient_funds", "system_error", "fraud_prevented")
MOBILE_OSES = ("iOS", "Android")
#: payment methods that carry device_info {os, app_version, device_model}; others carry {}
DEVICE_PAYMENT_METHODS = ("online", "mobile")
RISK_LEVELS = (1, 2, 3, 4, 5)

FIELDS = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "payment_method",
    "amount",
    "location",
    "device_info",
    "status",
    "commission_type",
    "commission_amount",
    "vat_amount",
    "total_amount",
    "customer_type",
    "risk_level",
    "failure_reason",
)

# Validation error codes (darooghe.validation.rules).
ERR_AMOUNT = "ERR_AMOUNT"
ERR_TIME = "ERR_TIME"
ERR_DEVICE = "ERR_DEVICE"
ERR_SCHEMA = "ERR_SCHEMA"
ERROR_CODES = (ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA)

# Fraud rules (darooghe.fraud.rules).
VELOCITY = "VELOCITY"
GEO_IMPOSSIBLE = "GEO_IMPOSSIBLE"
AMOUNT_ANOMALY = "AMOUNT_ANOMALY"
FRAUD_RULES = (VELOCITY, GEO_IMPOSSIBLE, AMOUNT_ANOMALY)

# ------------------------------------------------------------------------------------------------
# The typed transaction: the one structure every part of the project reads a transaction into.
#
# `Transaction` is a frozen msgspec Struct whose annotations *are* the schema: field order is
# FIELDS, enums are Literal types built from the tuples above, numeric ranges are msgspec
# constraints, identifier formats and the failure_reason rule are checked in __post_init__.
# Two readers use those same definitions:
#   - msgspec's C decoder for the common, valid case (one call, no intermediate dict) — what lets
#     the validator keep up with Kafka;
#   - `inspect_transaction`, which after a failed decode converts field by field (and inside
#     location and device_info, key by key) against the same annotations, so that *every* problem
#     is reported rather than the first one msgspec meets, and so that the fields that did convert
#     can still be checked by the other validation rules.
# Type conversion is strict on purpose: amounts are JSON integers (a string "850000" or a float
# 850000.0 is a wrong type, not something to coerce), enum values are case-sensitive, timestamps are
# ISO-8601 with an explicit offset, converted to UTC and truncated to the millisecond (Kafka's
# precision). Unknown fields are refused, so a producer bug is seen instead of silently dropped.
# ------------------------------------------------------------------------------------------------

import datetime as _dt
import functools
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect

UTC = _dt.UTC
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
_MS = _dt.timedelta(milliseconds=1)

#: Largest amount: Spark and MongoDB read amounts as signed 64-bit integers.
MAX_AMOUNT = 2**63 - 1
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CUSTOMER_ID_PATTERN = r"^cust_[0-9]+$"
MERCHANT_ID_PATTERN = r"^merch_[0-9]+$"

EventTime = Annotated[_dt.datetime, msgspec.Meta(tz=True)]
PositiveAmount = Annotated[int, msgspec.Meta(gt=0, le=MAX_AMOUNT)]
NonNegativeAmount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
RiskLevel = Annotated[int, msgspec.Meta(ge=RISK_LEVELS[0], le=RISK_LEVELS[-1])]
MerchantCategory = Literal[MERCHANT_CATEGORIES]  # type: ignore[valid-type]
PaymentMethod = Literal[PAYMENT_METHODS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
CommissionType = Literal[COMMISSION_TYPES]  # type: ignore[valid-type]
CustomerType = Literal[CUSTOMER_TYPES]  # type: ignore[valid-type]
FailureReason = Literal[FAILURE_REASONS]  # type: ignore[valid-type]


class Location(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    lat: Latitude
    lng: Longitude


class DeviceInfo(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """`{os, app_version, device_model}` for online and mobile payments, `{}` for pos and nfc.

    Absent keys (or JSON null) are None and are left out when serialised, so `{}` stays `{}`.
    Whether a mobile payment's `os` is acceptable is a validation rule (ERR_DEVICE), not a schema
    question, so any string is accepted here.
    """

    os: str | None = None
    app_version: str | None = None
    device_model: str | None = None


def format_timestamp(ts: _dt.datetime) -> str:
    """ISO-8601 UTC with `Z` and exactly three fractional digits: 2026-03-23T14:35:22.145Z."""
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts!r} has no time zone; expected an aware datetime")
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def format_epoch_ms(ms: int) -> str:
    """Epoch milliseconds (a Kafka record timestamp) as ISO-8601 UTC with `Z` and milliseconds:
    format_timestamp of that instant, its second formatted once (an alert's times, a micro-batch's
    late records share few seconds; a datetime per call was 6 % of the fraud job's state worker)."""
    try:
        seconds, millis = divmod(operator.index(ms), 1000)
    except TypeError:  # not an integer (a float): through a datetime
        return format_timestamp(EPOCH + _dt.timedelta(milliseconds=ms))
    return f"{_utc_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=4096)
def _utc_second(seconds: int) -> str:
    """`2026-03-23T14:35:22` of an epoch second (UTC)."""
    return (EPOCH + _dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")[:-6]


def parse_iso_ms(text: str) -> int:
    """ISO-8601 text (`Z` or an offset; a time without a zone is UTC) as epoch milliseconds;
    ValueError when it is no ISO-8601 time."""
    moment = _dt.datetime.fromisoformat(text.strip())  # Python 3.11 reads the "Z" suffix
    return epoch_ms(moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


def epoch_ms(ts: _dt.datetime) -> int:
    """An aware datetime as epoch milliseconds (floor), the unit of Kafka record timestamps."""
    return (ts - EPOCH) // _MS


def normalise_event_time(ts: _dt.datetime) -> _dt.datetime:
    """UTC, truncated to the millisecond; ValueError when the instant has no UTC representation."""
    if ts.tzinfo is UTC and not ts.microsecond % 1000:
        return ts
    try:
        ts = ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"timestamp {ts.isoformat()} is outside the representable range in UTC"
        ) from None
    return ts.replace(microsecond=ts.microsecond - ts.microsecond % 1000)


# Identifier formats are checked in Python rather than as msgspec `pattern` constraints: the same
# rule, at a third of the cost per record (msgspec calls back into `re` for every pattern).
_UUID_RE = re.compile(UUID_PATTERN.strip("^$"))


def _is_uuid(value: str) -> bool:
    return _UUID_RE.fullmatch(value) is not None


def _is_customer_id(value: str) -> bool:
    return value.startswith("cust_") and value[5:].isdigit() and value.isascii()


def _is_merchant_id(value: str) -> bool:
    return value.startswith("merch_") and value[6:].isdigit() and value.isascii()


#: field -> (check, what is expected), for the identifier fields.
IDENTIFIER_FORMATS = {
    "transaction_id": (_is_uuid, "a lowercase UUID"),
    "customer_id": (_is_customer_id, "cust_<n>"),
    "merchant_id": (_is_merchant_id, "merch_<n>"),
}


def identifier_problem(name: str, value: str) -> str | None:
    check, expected = IDENTIFIER_FORMATS[name]
    return None if check(value) else f"{name}: {value!r} is not {expected}"


def failure_reason_problem(status: object, failure_reason: object) -> str | None:
    """The cross-field rule: failure_reason is null unless the status is declined."""
    if failure_reason is not None and status != "declined":
        return (
            f"failure_reason: {failure_reason!r} must be null unless status is 'declined' "
            f"(status is {status!r})"
        )
    return None


# gc=False: a Transaction holds only scalars and the two small structs above, never a cycle,
# so the garbage collector need not track the millions of them a validator creates.
class Transaction(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One transaction, typed. Field order is FIELDS (checked at import).

    Read one with `Transaction.decode(value)` (raises SchemaError listing every problem) or
    `inspect_transaction(value)` (never raises); write one with `to_json_bytes()`.
    """

    transaction_id: str
    timestamp: EventTime
    customer_id: str
    merchant_id: str
    merchant_category: MerchantCategory
    payment_method: PaymentMethod
    amount: PositiveAmount
    location: Location
    device_info: DeviceInfo
    status: Status
    commission_type: CommissionType
    commission_amount: NonNegativeAmount
    vat_amount: NonNegativeAmount
    total_amount: NonNegativeAmount
    customer_type: CustomerType
    risk_level: RiskLevel
    failure_reason: FailureReason | None

    def __post_init__(self) -> None:
        # Runs after every decode and construction, so every Transaction holds its event time in
        # UTC at millisecond precision whatever offset or sub-millisecond digits were written.
        # A ValueError here is reported by msgspec as a validation error of the decode.
        ts = self.timestamp
        if ts.tzinfo is not UTC or ts.microsecond % 1000:
            msgspec.structs.force_setattr(self, "timestamp", normalise_event_time(ts))
        if not (
            _is_uuid(self.transaction_id)
            and _is_customer_id(self.customer_id)
            and _is_merchant_id(self.merchant_id)
        ):
            raise ValueError(
                "; ".join(
                    p
                    for p in (identifier_problem(n, getattr(self, n)) for n in IDENTIFIER_FORMATS)
                    if p
                )
            )
        problem = failure_reason_problem(self.status, self.failure_reason)
        if problem:
            raise ValueError(problem)

    @classmethod
    def decode(cls, data: bytes | str) -> Transaction:
        """Decode one JSON value; raises SchemaError listing every problem when it is not valid."""
        inspection = inspect_transaction(data)
        if inspection.transaction is None:
            raise SchemaError(inspection.problems)
        return inspection.transaction

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Transaction:
        """A Transaction from already-decoded JSON; raises SchemaError.

        Nested objects must be dicts too: from a Spark Row, pass `row.asDict(recursive=True)`.
        """
        inspection = inspect_transaction(obj)
        if inspection.transaction is None:
            raise SchemaError(inspection.problems)
        return inspection.transaction

    @property
    def event_time_ms(self) -> int:
        """The event time as epoch milliseconds: the record timestamp of a valid transaction."""
        # Exact: the timestamp is a whole number of milliseconds (see __post_init__), far inside
        # the range where a float holds milliseconds to better than half a millisecond.
        return round(self.timestamp.timestamp() * 1000)

    def to_json_bytes(self) -> bytes:
        """The normalised JSON value: FIELDS order, compact, timestamp as ISO UTC `Z` with ms."""
        out = _ENCODER.encode(self)
        # msgspec writes the UTC timestamp with microseconds, "2026-03-23T14:35:22.145000Z", or
        # with none, "...22Z", when they are zero; the contract is exactly milliseconds. The
        # timestamp is the value right after this key (which cannot occur inside an escaped JSON
        # string); __post_init__ keeps it UTC and truncated to the millisecond; years have 4 digits.
        start = out.index(b'"timestamp":"') + 13
        if self.timestamp.microsecond:
            return out[: start + 23] + out[start + 26 :]  # drop the "000" before the Z
        return out[: start + 19] + b".000" + out[start + 19 :]

    def to_json(self) -> str:
        return self.to_json_bytes().decode()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in FIELDS order (timestamp as the normalised string)."""
        return msgspec.json.decode(self.to_json_bytes())


assert tuple(f.name for f in msgspec.structs.fields(Transaction)) == FIELDS, "FIELDS order drifted"

_DECODER = msgspec.json.Decoder(Transaction)
_ENCODER = msgspec.json.Encoder()
_ANY_JSON = msgspec.json.Decoder()
#: What a failed conversion can raise: msgspec's errors, a ValueError from __post_init__, and
#: RecursionError for absurdly nested input.
_CONVERSION_ERRORS = (msgspec.MsgspecError, ValueError, TypeError, RecursionError)


class SchemaError(ValueError):
    """A value that is not a valid transaction; `problems` lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class Inspection:
    """What could be read from one value: the transaction when valid, else every problem.

    `fields` holds, for an invalid value, the typed value of each top-level field that converted
    on its own, so rules that need only those fields (e.g. the amount sum) can still be checked.
    `transaction_id` is the raw id whenever it is a string, valid or not (for error logs).
    """

    transaction: Transaction | None
    problems: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    transaction_id: str | None = None

    @property
    def valid(self) -> bool:
        return self.transaction is not None


def read_transaction(data: bytes) -> Transaction | None:
    """The fast path: the Transaction when `data` is a valid value, else None (no diagnostics).

    What the validator calls first on every record; inspect_transaction explains a None.
    """
    try:
        return _DECODER.decode(data)
    except _CONVERSION_ERRORS:
        return None


def inspect_transaction(data: bytes | bytearray | str | Mapping[str, Any] | None) -> Inspection:
    """Read one value as a Transaction, reporting every schema problem. Never raises.

    Accepts a record value (bytes or text; None for a Kafka null value) or decoded JSON.
    """
    if not isinstance(data, (bytes, bytearray, str)) and isinstance(data, Mapping):
        obj: Any = dict(data)
    else:
        if data is None:
            return Inspection(None, ["value: no value (null record)"])
        if isinstance(data, str):
            data = data.encode("utf-8", errors="surrogatepass")
        try:
            transaction = _DECODER.decode(data)
            return Inspection(transaction, transaction_id=transaction.transaction_id)
        except _CONVERSION_ERRORS:
            pass
        if not bytes(data).strip():
            return Inspection(None, ["value: empty"])
        try:
            obj = _ANY_JSON.decode(data)
        except UnicodeDecodeError as exc:
            return Inspection(None, [f"value: not UTF-8 ({exc.reason} at byte {exc.start})"])
        except _CONVERSION_ERRORS as exc:
            return Inspection(None, [f"value: not JSON ({exc})"])
    if not isinstance(obj, dict):
        return Inspection(
            None, [f"value: expected a JSON object, got {_json_kind(obj)} ({_describe(obj)})"]
        )

    fields, problems = _convert_fields(Transaction, obj, "")
    if "status" in fields and "failure_reason" in fields:
        problem = failure_reason_problem(fields["status"], fields["failure_reason"])
        if problem:
            problems.append(problem)
    tid = obj.get("transaction_id")
    transaction_id = tid if isinstance(tid, str) else None
    if not problems:
        try:
            return Inspection(Transaction(**fields), [], fields, transaction_id)
        except _CONVERSION_ERRORS as exc:  # pragma: no cover - every check above is per field
            problems.append(str(exc))
    return Inspection(None, problems, fields, transaction_id)


def _convert_fields(struct: type[msgspec.Struct], obj: dict, prefix: str) -> tuple[dict, list[str]]:
    """Convert each field of `obj` on its own against `struct`'s annotations; collect problems."""
    fields: dict[str, Any] = {}
    problems: list[str] = []
    infos = _struct_fields(struct)
    required = [f.name for f in infos if f.required]
    missing = [prefix + name for name in required if name not in obj]
    if missing:
        problems.append(f"missing field(s): {', '.join(missing)}")
    known = {f.name for f in infos}
    unknown = [prefix + str(name) for name in obj if name not in known]
    if unknown:
        problems.append(f"unknown field(s): {', '.join(map(repr, unknown))}")
    for info in infos:
        if info.name not in obj:
            continue
        value = obj[info.name]
        name = prefix + info.name
        if isinstance(info.type, type) and issubclass(info.type, msgspec.Struct):
            if not isinstance(value, dict):
                problems.append(
                    f"{name}: expected an object, got {_json_kind(value)} ({_describe(value)})"
                )
                continue
            inner, inner_problems = _convert_fields(info.type, value, name + ".")
            if inner_problems:
                problems.extend(inner_problems)
                continue
            fields[info.name] = info.type(**inner)
            continue
        try:
            converted = msgspec.convert(value, info.type, strict=True)
            if struct is Transaction:
                if info.name == "timestamp":
                    converted = normalise_event_time(converted)
                elif info.name in IDENTIFIER_FORMATS:
                    problem = identifier_problem(info.name, converted)
                    if problem:
                        problems.append(problem)
                        continue
            fields[info.name] = converted
        except _CONVERSION_ERRORS as exc:
            problems.append(_field_problem(name, info.name, value, exc))
    return fields, problems


@functools.cache
def _struct_fields(struct: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    # msgspec.structs.fields re-evaluates the annotations on every call: far too slow per record.
    return msgspec.structs.fields(struct)


_ENUM_CHOICES: dict[str, tuple] = {
    "merchant_category": MERCHANT_CATEGORIES,
    "payment_method": PAYMENT_METHODS,
    "status": STATUSES,
    "commission_type": COMMISSION_TYPES,
    "customer_type": CUSTOMER_TYPES,
    "failure_reason": (*FAILURE_REASONS, None),
}


def _field_problem(name: str, short_name: str, value: Any, exc: Exception) -> str:
    choices = _ENUM_CHOICES.get(short_name)
    if choices is not None and (isinstance(value, str) or value is None):
        shown = ", ".join("null" if c is None else c for c in choices)
        return f"{name}: {_describe(value)} is not one of {shown}"
    message = str(exc)
    return f"{name}: {message[:1].lower()}{message[1:]} (value {_describe(value)})"


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _describe(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_INT32 = (-(2**31), 2**31 - 1)


def _spark_type(t: msgspec.inspect.Type) -> str:
    """The Spark SQL type that reads JSON of msgspec type `t` (as Transaction's fields are typed)."""
    mi = msgspec.inspect
    if isinstance(t, mi.UnionType):  # `X | None`: Spark columns are nullable anyway
        (only,) = [u for u in t.types if not isinstance(u, mi.NoneType)]
        return _spark_type(only)
    if isinstance(t, (mi.StrType, mi.DateTimeType)):
        return "STRING"  # an event time stays text: convert it with to_timestamp after reading
    if isinstance(t, mi.LiteralType) and all(isinstance(v, str) for v in t.values):
        return "STRING"
    if isinstance(t, mi.IntType):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
        fits = low is not None and high is not None and _INT32[0] <= low and high <= _INT32[1]
        return "INT" if fits else "BIGINT"
    if isinstance(t, mi.FloatType):
        return "DOUBLE"
    if isinstance(t, mi.StructType):
        return "STRUCT<" + ", ".join(f"{f.encode_name}: {_spark_type(f.type)}" for f in t.fields) + ">"
    raise TypeError(f"no Spark type for the msgspec type {t!r}; extend _spark_type")


def spark_ddl(fields: tuple[str, ...] = FIELDS) -> str:
    """`fields` of a transaction (in FIELDS order) as a Spark DDL string for `from_json`.

    Derived from Transaction's annotations, so the streaming jobs, the lake and the batch layer
    read exactly the schema the validator checks; `timestamp` stays a string.
    """
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"spark_ddl: {sorted(unknown)} are not transaction fields {FIELDS}")
    types = {f.encode_name: f.type for f in msgspec.inspect.type_info(Transaction).fields}
    return ", ".join(f"{name} {_spark_type(types[name])}" for name in FIELDS if name in fields)


#: The whole transaction as a Spark DDL string (for `from_json`).
SPARK_DDL = spark_ddl()
