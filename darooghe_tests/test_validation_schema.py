"""The typed transaction (darooghe.schema.Transaction): conversion, normalisation, every schema
problem reported, and the fast reader agreeing with the diagnostic one."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from darooghe import schema
from darooghe.schema import (
    FIELDS,
    DeviceInfo,
    Location,
    SchemaError,
    Transaction,
    format_epoch_ms,
    inspect_transaction,
    read_transaction,
)
from darooghe.validation.samples import encode, transaction_dict

EXAMPLE = (
    '{"transaction_id":"89a7e4c1-fb88-4bd9-8c47-0ad28aef77eb","timestamp":"2026-03-23T14:35:22.145Z",'
    '"customer_id":"cust_2984","merchant_id":"merch_15","merchant_category":"food_service",'
    '"payment_method":"mobile","amount":850000,"location":{"lat":35.7219,"lng":51.3347},'
    '"device_info":{"os":"Android","app_version":"2.4.1","device_model":"Samsung Galaxy S25"},'
    '"status":"approved","commission_type":"progressive","commission_amount":12000,"vat_amount":76500,'
    '"total_amount":938500,"customer_type":"individual","risk_level":3,"failure_reason":null}'
)


def example(**changes) -> dict:
    obj = json.loads(EXAMPLE)
    obj.update(changes)
    return obj


def problems_of(obj) -> list[str]:
    data = obj if isinstance(obj, (bytes, str)) or obj is None else encode(obj)
    return inspect_transaction(data).problems


def test_spec_example_converts_to_typed_fields_and_back_byte_for_byte():
    t = Transaction.decode(EXAMPLE)
    assert t.timestamp == dt.datetime(2026, 3, 23, 14, 35, 22, 145000, tzinfo=dt.UTC)
    assert t.amount == 850000 and isinstance(t.amount, int)
    assert t.location == Location(35.7219, 51.3347)
    assert t.device_info == DeviceInfo("Android", "2.4.1", "Samsung Galaxy S25")
    assert t.failure_reason is None
    assert t.event_time_ms == 1774276522145
    assert t.to_json() == EXAMPLE  # already normal: FIELDS order, compact, ms, Z
    assert list(t.to_dict()) == list(FIELDS)


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("2026-03-23T14:35:22.145Z", "2026-03-23T14:35:22.145Z"),
        ("2026-03-23T14:35:22Z", "2026-03-23T14:35:22.000Z"),
        ("2026-03-23T14:35:22.1Z", "2026-03-23T14:35:22.100Z"),
        ("2026-03-23T14:35:22.999999Z", "2026-03-23T14:35:22.999Z"),  # truncated, not rounded
        ("2026-03-23T18:05:22.145+03:30", "2026-03-23T14:35:22.145Z"),  # Tehran offset to UTC
        ("2026-03-23T14:35:22.145+00:00", "2026-03-23T14:35:22.145Z"),
    ],
)
def test_timestamps_normalise_to_utc_milliseconds(written, normalised):
    t = Transaction.decode(encode(example(timestamp=written)))
    assert json.loads(t.to_json())["timestamp"] == normalised
    assert t.timestamp.tzinfo is dt.UTC
    assert format_epoch_ms(t.event_time_ms) == normalised


def test_pos_device_info_stays_empty_and_floats_normalise():
    obj = example(payment_method="pos", device_info={}, location={"lat": 35, "lng": 51.40})
    out = json.loads(Transaction.decode(encode(obj)).to_json())
    assert out["device_info"] == {}
    assert out["location"] == {"lat": 35.0, "lng": 51.4}


def test_generated_style_records_round_trip():
    rng = random.Random(3)
    for i in range(200):
        obj = transaction_dict(rng, 1774276522145 + i)
        t = Transaction.decode(encode(obj))
        assert json.loads(t.to_json()) == obj
        assert Transaction.decode(t.to_json_bytes()) == t


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (None, "no value"),
        (b'{"transaction_id": ', "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"a string"', "got a string"),
        (b"42", "got a number"),
        (b"null", "got null"),
    ],
)
def test_unreadable_values(value, fragment):
    problems = problems_of(value)
    assert len(problems) == 1 and fragment in problems[0]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"amount": "850000"}, "amount: expected `int`, got `str`"),
        ({"amount": 850000.0}, "amount: expected `int`, got `float`"),
        ({"amount": True}, "amount: expected `int`, got `bool`"),
        ({"amount": 0}, "amount: expected `int` >= 1 (value 0)"),
        ({"amount": -5}, "amount: expected `int` >= 1 (value -5)"),
        ({"amount": 2**63}, "amount: expected `int` <="),
        ({"vat_amount": -1}, "vat_amount: expected `int` >= 0"),
        ({"risk_level": 6}, "risk_level: expected `int` <= 5"),
        ({"risk_level": "high"}, "risk_level: expected `int`, got `str`"),
        ({"merchant_category": "gambling"}, "merchant_category: 'gambling' is not one of retail"),
        ({"merchant_category": "Retail"}, "'Retail' is not one of"),  # enums are case-sensitive
        ({"payment_method": "crypto"}, "payment_method: 'crypto' is not one of online"),
        ({"status": None}, "status: None is not one of approved"),
        ({"customer_type": 2}, "customer_type: expected `str`, got `int`"),
        ({"failure_reason": "bored"}, "failure_reason: 'bored' is not one of cancelled"),
        ({"failure_reason": "cancelled"}, "must be null unless status is 'declined'"),
        (
            {"timestamp": "2026-03-23T14:35:22.145"},
            "timestamp: expected `datetime` with a timezone",
        ),
        ({"timestamp": "yesterday"}, "timestamp: invalid RFC3339"),
        ({"timestamp": 1774276522145}, "timestamp: expected `datetime`, got `int`"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "outside the representable range"),
        ({"transaction_id": "not-a-uuid"}, "transaction_id: 'not-a-uuid' is not a lowercase UUID"),
        ({"transaction_id": 12}, "transaction_id: expected `str`, got `int`"),
        ({"customer_id": "alice"}, "customer_id: 'alice' is not cust_<n>"),
        ({"merchant_id": 15}, "merchant_id: expected `str`, got `int`"),
        ({"location": "Tehran"}, "location: expected an object, got a string"),
        ({"location": {"lat": 95.0, "lng": 51.0}}, "location.lat: expected `float` <= 90.0"),
        ({"location": {"lat": 35.0}}, "missing field(s): location.lng"),
        ({"device_info": {"os": 5}}, "device_info.os: expected `str | null`, got `int`"),
        ({"device_info": {"os": "iOS", "colour": "red"}}, "unknown field(s): 'device_info.colour'"),
        ({"device_info": []}, "device_info: expected an object, got an array"),
        ({"surprise": 1}, "unknown field(s): 'surprise'"),
    ],
)
def test_each_schema_problem_is_named_with_its_value(changes, fragment):
    problems = problems_of(example(**changes))
    assert any(fragment in p for p in problems), problems
    assert read_transaction(encode(example(**changes))) is None


@pytest.mark.parametrize("name", FIELDS)
def test_every_missing_field_is_reported(name):
    obj = example()
    del obj[name]
    assert problems_of(obj) == [f"missing field(s): {name}"]


def test_every_problem_is_reported_not_only_the_first():
    obj = example(
        amount="x", merchant_category="shoes", risk_level=9, location={"lat": "a", "lng": 500}
    )
    del obj["status"]
    problems = problems_of(obj)
    joined = " | ".join(problems)
    for fragment in (
        "missing field(s): status",
        "amount:",
        "merchant_category:",
        "risk_level:",
        "location.lat:",
        "location.lng:",
    ):
        assert fragment in joined
    inspection = inspect_transaction(encode(obj))
    # the fields that did convert are kept, typed, for the other rules
    assert inspection.fields["total_amount"] == 938500
    assert inspection.fields["timestamp"].tzinfo is dt.UTC
    assert inspection.transaction_id == "89a7e4c1-fb88-4bd9-8c47-0ad28aef77eb"


def test_decode_raises_schema_error_with_every_problem():
    with pytest.raises(SchemaError) as caught:
        Transaction.decode(encode(example(amount=0, status="lost")))
    assert len(caught.value.problems) == 2


def test_from_dict_reads_decoded_json():
    assert Transaction.from_dict(example()) == Transaction.decode(EXAMPLE)
    with pytest.raises(SchemaError):
        Transaction.from_dict(example(amount=-1))


def test_declined_may_carry_a_failure_reason():
    t = Transaction.decode(encode(example(status="declined", failure_reason="insufficient_funds")))
    assert t.failure_reason == "insufficient_funds"


def test_spark_ddl_lists_the_fields_in_order():
    depth, top, current = 0, [], ""
    for ch in schema.SPARK_DDL + ",":
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            top.append(current.strip().split(" ")[0])
            current = ""
        else:
            current += ch
    assert top == list(FIELDS)


def test_the_generators_array_formatter_writes_the_one_timestamp_format():
    import numpy as np

    from darooghe.generator.ids import iso_millis

    ms = [0, 999, 1_000, 1_774_276_522_145, 1_774_276_522_005, -1, 253_402_300_799_999]
    assert iso_millis(np.array(ms, dtype=np.int64)) == [format_epoch_ms(m) for m in ms]
    assert format_epoch_ms(1_774_276_522_145) == "2026-03-23T14:35:22.145Z"


def test_spark_ddl_is_derived_from_the_transaction_type():
    """The DDL the lake and the streaming jobs parse with follows Transaction's annotations: the
    hand-typed copies it replaced (amounts 64-bit, risk_level 32-bit, timestamp kept as text)."""
    from darooghe.streaming.sources import FRAUD_FIELDS_SCHEMA, TRANSACTION_SCHEMA

    location = "location STRUCT<lat: DOUBLE, lng: DOUBLE>"
    assert schema.SPARK_DDL == (
        "transaction_id STRING, timestamp STRING, customer_id STRING, merchant_id STRING, "
        f"merchant_category STRING, payment_method STRING, amount BIGINT, {location}, "
        "device_info STRUCT<os: STRING, app_version: STRING, device_model: STRING>, "
        "status STRING, commission_type STRING, commission_amount BIGINT, vat_amount BIGINT, "
        "total_amount BIGINT, customer_type STRING, risk_level INT, failure_reason STRING"
    )
    assert TRANSACTION_SCHEMA == schema.SPARK_DDL.replace(
        ", device_info STRUCT<os: STRING, app_version: STRING, device_model: STRING>", ""
    )
    assert FRAUD_FIELDS_SCHEMA == (
        "transaction_id STRING, timestamp STRING, customer_id STRING, amount BIGINT, "
        f"{location}, risk_level INT"
    )
    with pytest.raises(ValueError, match="'merchant_city'"):
        schema.spark_ddl(("transaction_id", "merchant_city"))


def test_format_epoch_ms_is_the_datetime_formatting_of_that_instant():
    """The cached per-second path against format_timestamp of EPOCH + ms, over the whole range."""
    rng = random.Random(7)
    lowest, highest = -62_135_596_800_000, 253_402_300_799_999  # 0001-01-01 .. 9999-12-31
    values = [0, -1, -999, -1000, -1001, 999, 1000, lowest, highest]
    values += [rng.randrange(lowest, highest + 1) for _ in range(20_000)]
    values += [rng.randrange(-5_000, 5_000) for _ in range(2_000)]
    for ms in values:
        expected = schema.format_timestamp(schema.EPOCH + dt.timedelta(milliseconds=ms))
        assert format_epoch_ms(ms) == expected, ms
    for ms in (1.7, -1.7, 1_700_000_000_123.5):  # not an integer: through a datetime, as before
        assert format_epoch_ms(ms) == schema.format_timestamp(
            schema.EPOCH + dt.timedelta(milliseconds=ms)
        )
    with pytest.raises(OverflowError):
        format_epoch_ms(highest + 1)
