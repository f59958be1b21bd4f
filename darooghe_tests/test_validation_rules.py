"""The validation rules at their boundaries, several codes at once, the one-output decision and
the file mode (which must give the same verdicts)."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys

import pytest

from darooghe.records import Record, read_records, write_record_file
from darooghe.schema import (
    ERR_AMOUNT,
    ERR_DEVICE,
    ERR_SCHEMA,
    ERR_TIME,
    DeviceInfo,
    format_epoch_ms,
)
from darooghe.validation import ErrorLog, decide, decide_record
from darooghe.validation.files import validate_file
from darooghe.validation.rules import MAX_EVENT_AGE_MS, amount_problem, device_problem, time_problem
from darooghe.validation.samples import encode, samples, transaction_dict

EVENT_MS = 1774276522145  # 2026-03-23T14:35:22.145Z
TOPIC = "darooghe.transactions"


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def txn(**changes) -> dict:
    obj = transaction_dict(random.Random(5), EVENT_MS)
    obj.update(
        payment_method="online",
        device_info={"os": "Android", "app_version": "1", "device_model": "x"},
    )
    obj.update(changes)
    return obj


def verdict_of(obj, ingestion_ms=EVENT_MS, key=b"cust_1", offset=7):
    value = obj if isinstance(obj, (bytes, type(None))) else encode(obj)
    return decide(value, TOPIC, 2, offset, ingestion_ms, key)


def codes(obj, ingestion_ms=EVENT_MS):
    return verdict_of(obj, ingestion_ms).error_codes


# --- ERR_TIME ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ingestion_minus_event_ms", "expected"),
    [
        (0, ()),  # the event at the ingestion instant
        (-1, (ERR_TIME,)),  # 1 ms in the future
        (-3_600_000, (ERR_TIME,)),
        (MAX_EVENT_AGE_MS, ()),  # exactly 24 h before passes
        (MAX_EVENT_AGE_MS + 1, (ERR_TIME,)),  # 24 h + 1 ms fails
        (MAX_EVENT_AGE_MS - 1, ()),
        (7 * MAX_EVENT_AGE_MS, (ERR_TIME,)),
    ],
)
def test_time_rule_boundaries(ingestion_minus_event_ms, expected):
    assert codes(txn(), EVENT_MS + ingestion_minus_event_ms) == expected


def test_time_messages_name_both_instants_and_the_gap():
    future = time_problem(EVENT_MS + 1, EVENT_MS)
    assert (
        "2026-03-23T14:35:22.146Z is 1 ms after the ingestion time 2026-03-23T14:35:22.145Z"
        in future
    )
    old = time_problem(EVENT_MS, EVENT_MS + MAX_EVENT_AGE_MS + 1)
    assert "24 h 00 min 00.001 s before the ingestion time" in old and "24 h allowed" in old


def test_time_is_compared_at_millisecond_precision():
    # 0.9 ms after the ingestion time is the same millisecond: Kafka timestamps have no finer unit
    obj = txn(timestamp="2026-03-23T14:35:22.145900Z")
    assert codes(obj, EVENT_MS) == ()


def test_a_record_without_a_timestamp_is_judged_against_the_validator_clock():
    now = dt.datetime(2026, 3, 23, 15, 0, tzinfo=dt.UTC)
    assert decide(encode(txn()), TOPIC, 0, 0, None, validated_at=now).error_codes == ()
    late = dt.datetime(2026, 3, 25, tzinfo=dt.UTC)
    assert decide(encode(txn()), TOPIC, 0, 0, None, validated_at=late).error_codes == (ERR_TIME,)


# --- ERR_DEVICE -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "device", "expected"),
    [
        ("mobile", {"os": "iOS", "app_version": "1", "device_model": "iPhone"}, ()),
        ("mobile", {"os": "Android", "app_version": "1", "device_model": "Pixel"}, ()),
        ("mobile", {"os": "ios", "app_version": "1", "device_model": "iPhone"}, (ERR_DEVICE,)),
        ("mobile", {"os": "ANDROID", "app_version": "1", "device_model": "Pixel"}, (ERR_DEVICE,)),
        ("mobile", {"os": " iOS", "app_version": "1", "device_model": "iPhone"}, (ERR_DEVICE,)),
        ("mobile", {"os": "Windows", "app_version": "1", "device_model": "PC"}, (ERR_DEVICE,)),
        ("mobile", {"app_version": "1", "device_model": "Pixel"}, (ERR_DEVICE,)),  # no os
        ("mobile", {"os": None}, (ERR_DEVICE,)),  # null os
        ("mobile", {}, (ERR_DEVICE,)),
        (
            "online",
            {"os": "Windows", "app_version": "1", "device_model": "PC"},
            (),
        ),  # any os online
        ("pos", {}, ()),
        ("nfc", {}, ()),
    ],
)
def test_device_rule_case_and_absence(method, device, expected):
    assert codes(txn(payment_method=method, device_info=device)) == expected


def test_device_message_names_the_os():
    assert "got os 'ios'" in device_problem("mobile", DeviceInfo(os="ios"))
    assert "got no os" in device_problem("mobile", DeviceInfo())


# --- ERR_AMOUNT -------------------------------------------------------------------------------
@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_total_off_by_any_amount_fails(delta):
    obj = txn()
    obj["total_amount"] += delta
    assert codes(obj) == (ERR_AMOUNT,)


def test_amount_message_shows_the_sum():
    message = amount_problem(850000, 76500, 12000, 938501)
    assert message == (
        "total_amount 938501 != amount 850000 + vat_amount 76500 + commission_amount 12000 "
        "= 938500 (off by +1)"
    )


# --- several codes, partial rules on schema failures --------------------------------------------
def test_every_violated_rule_is_reported_in_code_order():
    obj = txn(payment_method="mobile", device_info={"os": "Linux"})
    obj["total_amount"] += 1
    assert codes(obj, EVENT_MS - 5) == (ERR_AMOUNT, ERR_TIME, ERR_DEVICE)
    obj["customer_type"] = "vip"
    verdict = verdict_of(obj, EVENT_MS - 5)
    assert verdict.error_codes == (ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA)
    log = ErrorLog.decode(verdict.value)
    assert set(log.errors) == set(log.error_codes)
    assert "'vip' is not one of individual, CIP, business" in log.errors[ERR_SCHEMA]


def test_rules_whose_fields_are_unreadable_are_not_guessed():
    obj = txn(amount="850000")  # wrong type: the sum cannot be checked
    obj["total_amount"] += 1
    assert codes(obj) == (ERR_SCHEMA,)
    assert codes(txn(payment_method="crypto", device_info={"os": "Linux"})) == (ERR_SCHEMA,)
    assert codes(txn(timestamp="soon"), EVENT_MS) == (ERR_SCHEMA,)
    # but a readable field still gets its rule
    obj = txn(merchant_category="gambling")
    obj["total_amount"] -= 1
    assert codes(obj) == (ERR_AMOUNT, ERR_SCHEMA)
    assert codes(txn(merchant_category="gambling"), EVENT_MS + 2 * MAX_EVENT_AGE_MS) == (
        ERR_TIME,
        ERR_SCHEMA,
    )


def test_zero_amount_with_consistent_totals_is_only_a_schema_error():
    assert codes(txn(amount=0, commission_amount=0, vat_amount=0, total_amount=0)) == (ERR_SCHEMA,)


# --- the two outputs ---------------------------------------------------------------------------
def test_valid_output_is_normalised_keyed_by_customer_at_event_time():
    obj = txn(timestamp="2026-03-23T18:05:22.145+03:30", customer_id="cust_42")
    verdict = verdict_of(obj, EVENT_MS + 10, key=b"something else")
    assert verdict.valid and verdict.error_codes == ()
    assert verdict.key == b"cust_42"
    assert verdict.timestamp == EVENT_MS  # the event time, not the ingestion time
    out = json.loads(verdict.value)
    assert out["timestamp"] == "2026-03-23T14:35:22.145Z"
    assert list(out) == list(obj)


def test_error_log_value_has_the_contract_fields():
    obj = txn()
    obj["total_amount"] += 1
    now = dt.datetime(2026, 3, 23, 15, 0, 0, 1000, tzinfo=dt.UTC)
    verdict = decide(encode(obj), TOPIC, 3, 1234, EVENT_MS + 5, b"cust_9", validated_at=now)
    assert not verdict.valid and verdict.key == b"cust_9" and verdict.timestamp == EVENT_MS + 5
    log = json.loads(verdict.value)
    assert list(log) == ["transaction_id", "error_codes", "errors", "source", "raw", "validated_at"]
    assert log["transaction_id"] == obj["transaction_id"]
    assert log["error_codes"] == [ERR_AMOUNT]
    assert log["source"] == {
        "topic": TOPIC,
        "partition": 3,
        "offset": 1234,
        "timestamp": format_epoch_ms(EVENT_MS + 5),
        "timestamp_ms": EVENT_MS + 5,
    }
    assert log["raw"] == encode(obj).decode()
    assert log["validated_at"] == "2026-03-23T15:00:00.001Z"


def test_unreadable_values_are_logged_with_a_null_id_and_the_raw_bytes():
    verdict = verdict_of(b"\xff{not json")
    log = ErrorLog.decode(verdict.value)
    assert log.transaction_id is None and log.error_codes == [ERR_SCHEMA]
    assert log.raw_base64 == "/3tub3QganNvbg=="
    tombstone = ErrorLog.decode(verdict_of(None).value)
    assert tombstone.raw is None and "no value" in tombstone.errors[ERR_SCHEMA]
    # an invalid id is still reported when it is a string
    log = ErrorLog.decode(verdict_of(txn(transaction_id="abc")).value)
    assert log.transaction_id == "abc"


def test_samples_get_exactly_their_expected_codes():
    for i, s in enumerate(samples(3000, EVENT_MS, invalid_share=0.3, seed=11)):
        assert decide(s.value, TOPIC, 0, i, s.timestamp, s.key).error_codes == s.expected_codes


# --- file mode --------------------------------------------------------------------------------
def _sample_records(n=800, seed=2):
    return [
        Record(
            key=s.key.decode(),
            value=s.value.decode("utf-8", errors="replace"),
            timestamp=s.timestamp,
            headers={"darooghe-label": ",".join(s.expected_codes)} if s.expected_codes else {},
            partition=i % 4,
            offset=i // 4,
        )
        for i, s in enumerate(samples(n, EVENT_MS, invalid_share=0.25, seed=seed))
    ]


def test_file_mode_writes_exactly_what_each_topic_would_get(tmp_path):
    records = _sample_records()
    write_record_file(records, tmp_path / "in.jsonl")
    counts = validate_file(
        tmp_path / "in.jsonl",
        tmp_path / "valid.jsonl",
        tmp_path / "errors.jsonl",
        log=lambda line: None,
    )
    valid = list(read_records(tmp_path / "valid.jsonl"))
    errors = list(read_records(tmp_path / "errors.jsonl"))
    assert counts.records_in == len(records) == len(valid) + len(errors)
    assert counts.valid == len(valid) and counts.errors == len(errors)
    expected_errors = [r for r in records if r.headers]
    assert len(errors) == len(expected_errors)
    by_source = {
        (ErrorLog.decode(e.value).source.partition, ErrorLog.decode(e.value).source.offset): e
        for e in errors
    }
    for r in expected_errors:
        e = by_source[(r.partition, r.offset)]
        assert ErrorLog.decode(e.value).error_codes == r.headers["darooghe-label"].split(",")
        assert e.headers == r.headers and e.key == r.key and e.timestamp == r.timestamp
    for v in valid:  # same verdict as decide() on the input record
        assert v.headers == {}
        assert json.loads(v.value)["customer_id"] == v.key
    same = [decide_record(r, TOPIC) for r in records if not r.headers]
    assert [s.value.decode() for s in same] == [v.value for v in valid]
    assert sum(counts.by_code.values()) == sum(
        len(ErrorLog.decode(e.value).error_codes) for e in errors
    )


def test_file_mode_cli_and_a_malformed_line_leaves_no_output(tmp_path):
    write_record_file(_sample_records(200, seed=4), tmp_path / "in.jsonl")
    cmd = [
        sys.executable,
        "-m",
        "darooghe.cli",
        "validate",
        "--input",
        str(tmp_path / "in.jsonl"),
        "--valid-output",
        str(tmp_path / "v.jsonl"),
        "--errors-output",
        str(tmp_path / "e.jsonl"),
    ]
    done = _run(cmd, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "validate: in 200 = valid" in done.stdout
    n_out = sum(1 for _ in read_records(tmp_path / "v.jsonl")) + sum(
        1 for _ in read_records(tmp_path / "e.jsonl")
    )
    assert n_out == 200

    (tmp_path / "bad.jsonl").write_text((tmp_path / "in.jsonl").read_text() + "not a record\n")
    cmd[5] = str(tmp_path / "bad.jsonl")
    cmd[7], cmd[9] = str(tmp_path / "v2.jsonl"), str(tmp_path / "e2.jsonl")
    done = _run(cmd, timeout=120)
    assert done.returncode == 1 and "bad.jsonl:201: not JSON" in done.stderr
    assert not (tmp_path / "v2.jsonl").exists() and not (tmp_path / "e2.jsonl").exists()
    assert not list(tmp_path.glob(".*.tmp"))

    done = _run(cmd[:6] + ["--valid-output", "x"], timeout=60)
    assert done.returncode == 2 and "the file mode needs --errors-output" in done.stderr


def test_generator_labels_match_the_verdicts(tmp_path):
    """The generator's injected invalid events get exactly their labelled code; nothing else fails."""
    pytest.importorskip("darooghe.generator")
    out = tmp_path / "history.jsonl"
    done = _run(
        [
            sys.executable,
            "-m",
            "darooghe.cli",
            "generate",
            "--mode",
            "history",
            "--days",
            "1",
            "--end",
            "2026-03-23T00:00:00Z",
            "--event-rate",
            "20",
            "--seed",
            "5",
            "--sink",
            "file",
            "--output",
            str(out),
            "--quiet",
            *[
                arg
                for code in ("amount", "time", "device", "schema")
                for arg in (f"--err-{code}-rate", "0.03")
            ],
        ],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    mismatched, injected = [], 0
    for r in read_records(out):
        label = r.headers.get("darooghe-label", "")
        expected = label if label.startswith("ERR_") else ""  # fraud labels are valid records
        injected += bool(expected)
        verdict = decide_record(r, TOPIC)
        if ",".join(verdict.error_codes) != expected:
            mismatched.append((expected, verdict.error_codes, r.value[:120]))
    assert not mismatched, mismatched[:5]
    assert injected > 100
