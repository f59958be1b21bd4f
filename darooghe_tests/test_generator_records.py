"""The generated week of the issue's "done when" (seed 11, 20 events/min, 7 days), checked record by
record with rules written here from the event schema, the validation rules and the fraud rules — not with the generator's own code.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from darooghe import schema
from darooghe.cli import main
from darooghe.generator.intensity import Intensity
from darooghe.generator.population import CITIES
from darooghe.records import parse_record, read_records
from darooghe.topics import LABEL_HEADER

SEED, RATE, DAYS = 11, 20, 7
END = "2026-03-21T00:00:00Z"  # a Saturday 03:30 in Tehran
INVALID_CODES = {"ERR_AMOUNT", "ERR_TIME", "ERR_DEVICE", "ERR_SCHEMA"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "h.jsonl"
    argv = ["generate", "--seed", str(SEED), "--event-rate", str(RATE), "--mode", "history",
            "--days", str(DAYS), "--end", END, "--sink", "file", "--output", str(path), "-q"]
    assert main(argv) == 0
    return path, list(read_records(path))


# --- independent rules ------------------------------------------------------------------------
def parse_ts(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp() * 1000)


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up (non-negative integers)."""
    return (2 * numerator + denominator) // (2 * denominator)


def expected_commission(kind: str, amount: int) -> int:
    """The commission formulas, in per-mille of a rial so every step is an integer."""
    if kind == "flat":
        return half_up(amount * 20, 1000)
    if kind == "progressive":
        part1 = min(amount, 500_000)
        part2 = max(min(amount, 1_500_000) - 500_000, 0)
        part3 = max(amount - 1_500_000, 0)
        return half_up(part1 * 10 + part2 * 20 + part3 * 30, 1000)
    rate = 25 if amount < 500_000 else 20 if amount <= 1_500_000 else 15
    return half_up(amount * rate, 1000)


def is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def schema_ok(v) -> bool:
    if not isinstance(v, dict) or set(v) != set(schema.FIELDS):
        return False
    checks = [
        isinstance(v["transaction_id"], str) and UUID_RE.match(v["transaction_id"]),
        isinstance(v["timestamp"], str) and TS_RE.match(v["timestamp"]),
        isinstance(v["customer_id"], str) and re.fullmatch(r"cust_\d+", v["customer_id"]),
        isinstance(v["merchant_id"], str) and re.fullmatch(r"merch_\d+", v["merchant_id"]),
        v["merchant_category"] in schema.MERCHANT_CATEGORIES,
        v["payment_method"] in schema.PAYMENT_METHODS,
        is_int(v["amount"]) and v["amount"] > 0,
        isinstance(v["location"], dict) and set(v["location"]) == {"lat", "lng"}
        and all(isinstance(v["location"][k], float) for k in ("lat", "lng")),
        isinstance(v["device_info"], dict),
        v["status"] in schema.STATUSES,
        v["commission_type"] in schema.COMMISSION_TYPES,
        all(is_int(v[k]) for k in ("commission_amount", "vat_amount", "total_amount")),
        v["customer_type"] in schema.CUSTOMER_TYPES,
        is_int(v["risk_level"]) and 1 <= v["risk_level"] <= 5,
        v["failure_reason"] is None or v["failure_reason"] in schema.FAILURE_REASONS,
    ]
    return all(bool(c) for c in checks)


def violations(value: str, record_ts: int) -> set[str]:
    """Every validation rule the record breaks (rules evaluated where their fields allow)."""
    try:
        v = json.loads(value)
    except json.JSONDecodeError:
        return {"ERR_SCHEMA"}
    codes = set() if schema_ok(v) else {"ERR_SCHEMA"}
    if not isinstance(v, dict):
        return codes
    parts = [v.get(k) for k in ("amount", "vat_amount", "commission_amount", "total_amount")]
    if all(is_int(p) for p in parts) and parts[3] != parts[0] + parts[1] + parts[2]:
        codes.add("ERR_AMOUNT")
    if isinstance(v.get("timestamp"), str) and TS_RE.match(v["timestamp"]):
        t = parse_ts(v["timestamp"])
        if t > record_ts or t < record_ts - DAY_MS:
            codes.add("ERR_TIME")
    if v.get("payment_method") == "mobile":
        device = v.get("device_info")
        if not isinstance(device, dict) or device.get("os") not in ("iOS", "Android"):
            codes.add("ERR_DEVICE")
    return codes


def haversine(lat1, lng1, lat2, lng2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(a))


def rule_labels(events: list[dict]) -> dict[str, set[str]]:
    """transaction_id -> the fraud rules that fire on it, customer by customer."""
    by_customer = defaultdict(list)
    for e in events:
        by_customer[e["customer_id"]].append(e)
    out: dict[str, set[str]] = {}
    for txns in by_customer.values():
        txns.sort(key=lambda e: (e["t"], e["transaction_id"]))
        times = [e["t"] for e in txns]
        approved_sum = approved_count = 0  # approved amounts strictly before the current time
        pending = []  # approved amounts at the current time, added once time moves on
        for i, e in enumerate(txns):
            if i and e["t"] != times[i - 1]:
                approved_sum += sum(pending)
                approved_count += len(pending)
                pending = []
            fired = set()
            # (t - 2 min, t]: everything up to t, including later-sorted events at the same time
            if bisect_right(times, e["t"]) - bisect_right(times, e["t"] - 120_000) > 5:
                fired.add("VELOCITY")
            j = i - 1  # earlier, or simultaneous with a smaller transaction_id
            while j >= 0 and e["t"] - txns[j]["t"] <= 300_000:
                o = txns[j]
                if haversine(o["location"]["lat"], o["location"]["lng"],
                             e["location"]["lat"], e["location"]["lng"]) > 50:
                    fired.add("GEO_IMPOSSIBLE")
                    break
                j -= 1
            if approved_count and e["amount"] * approved_count > 10 * approved_sum:
                fired.add("AMOUNT_ANOMALY")
            if e["status"] == "approved":
                pending.append(e["amount"])
            out[e["transaction_id"]] = fired
    return out


# --- tests --------------------------------------------------------------------------------------
def label_of(record) -> str | None:
    return record.headers.get(LABEL_HEADER)


def test_record_file_format_and_keys(week):
    path, records = week
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(records) > 150_000
    for line in lines[:: max(1, len(lines) // 5000)]:
        assert parse_record(line).to_json() == line  # same bytes as the platform's record writer
    for r in records[:5000]:
        if label_of(r) != "ERR_SCHEMA":
            assert r.key == json.loads(r.value)["customer_id"]
    assert all(set(r.headers) <= {LABEL_HEADER} for r in records)
    times = [r.timestamp for r in records]
    assert times == sorted(times)
    end = parse_ts(END.replace("Z", ".000Z"))
    assert end - DAYS * DAY_MS <= times[0] and times[-1] < end


def test_valid_records_follow_schema_and_commission(week):
    _, records = week
    customers, merchants, points = set(), set(), []
    checked = 0
    for r in records:
        if label_of(r) in INVALID_CODES:
            continue
        v = json.loads(r.value)
        assert list(v) == list(schema.FIELDS)  # the schema's field order
        assert violations(r.value, r.timestamp) == set(), r.value
        assert parse_ts(v["timestamp"]) == r.timestamp  # history: record timestamp = event time
        assert v["commission_amount"] == expected_commission(v["commission_type"], v["amount"])
        assert v["vat_amount"] == half_up(v["amount"] * 9, 100)
        assert v["total_amount"] == v["amount"] + v["vat_amount"] + v["commission_amount"]
        assert (v["failure_reason"] is not None) == (v["status"] == "declined")
        if v["payment_method"] in ("online", "mobile"):
            assert set(v["device_info"]) == {"os", "app_version", "device_model"}
            if v["payment_method"] == "mobile":
                assert v["device_info"]["os"] in ("iOS", "Android")
        else:
            assert v["device_info"] == {}
        points.append((v["location"]["lat"], v["location"]["lng"]))
        customers.add(v["customer_id"])
        merchants.add(v["merchant_id"])
        checked += 1
    assert checked > 0.95 * len(records)
    # every place is a real city, with a small jitter
    lat, lng = np.radians(np.array(points)).T
    clat, clng = np.radians([[c.lat, c.lng] for c in CITIES]).T
    a = (np.sin((clat[None] - lat[:, None]) / 2) ** 2
         + np.cos(lat[:, None]) * np.cos(clat[None]) * np.sin((clng[None] - lng[:, None]) / 2) ** 2)
    assert (2 * 6371 * np.arcsin(np.sqrt(a))).min(axis=1).max() < 25
    assert len(customers) <= 1000 and len(merchants) <= 50 and len(merchants) > 40


def test_injected_invalid_records_fail_exactly_their_rule(week):
    _, records = week
    seen = Counter()
    for r in records:
        label = label_of(r)
        if label in INVALID_CODES:
            assert violations(r.value, r.timestamp) == {label}, (label, r.value)
            seen[label] += 1
    n = len(records)
    for code in INVALID_CODES:  # 0.5% each by default: binomial, 5 sd
        assert abs(seen[code] - 0.005 * n) < 5 * math.sqrt(0.005 * n), (code, seen[code])


def test_fraud_labels_are_exactly_the_rules(week):
    """Every labelled transaction satisfies its rules and every transaction a rule fires on is labelled."""
    _, records = week
    events, header = [], {}
    for r in records:
        label = label_of(r)
        if label in INVALID_CODES:
            continue  # the validator removes them: not part of the stream the rules see
        v = json.loads(r.value)
        v["t"] = parse_ts(v["timestamp"])
        events.append(v)
        header[v["transaction_id"]] = set(label.split(",")) if label else set()
    truth = rule_labels(events)
    mismatches = [(tid, header[tid], truth[tid]) for tid in header if header[tid] != truth[tid]]
    assert not mismatches, mismatches[:5]
    counts = Counter(rule for rules in truth.values() for rule in rules)
    assert min(counts[r] for r in schema.FRAUD_RULES) > 200, counts
    # nothing in the value gives the label away
    assert all(LABEL_HEADER not in r.value and "VELOCITY" not in r.value for r in records)


def test_rates_of_declines_and_fraud(week):
    _, records = week
    statuses = Counter(json.loads(r.value)["status"] for r in records if label_of(r) not in INVALID_CODES)
    n = sum(statuses.values())
    assert abs(statuses["declined"] / n - 0.05) < 0.005
    labelled = sum(1 for r in records if label_of(r) and label_of(r) not in INVALID_CODES)
    assert 0.01 < labelled / len(records) < 0.04  # injected at FRAUD_RATE 0.02


def test_hourly_counts_follow_the_intensity(week):
    """Chi-square of the 168 hourly counts against ∫λ over each hour."""
    _, records = week
    end = parse_ts(END.replace("Z", ".000Z"))
    start = end - DAYS * DAY_MS
    hours = np.bincount((np.array([r.timestamp for r in records]) - start) // 3_600_000, minlength=DAYS * 24)
    lam = Intensity(RATE, 2.5)
    expected = np.array([lam.expected_events(start / 1000 + 3600 * h, start / 1000 + 3600 * (h + 1))
                         for h in range(DAYS * 24)])
    stat = float(np.sum((hours - expected) ** 2 / expected))
    assert chi2_sf(stat, DAYS * 24) > 0.001, stat
    assert abs(hours.sum() - expected.sum()) < 4 * math.sqrt(expected.sum())


def test_daily_and_weekly_cycles_in_the_file(week):
    _, records = week
    tz = ZoneInfo("Asia/Tehran")
    by_hour, by_day = Counter(), Counter()
    for r in records[::7]:
        local = datetime.fromtimestamp(r.timestamp / 1000, tz)
        by_hour[local.hour] += 1
        by_day[local.strftime("%A")] += 1
    assert by_hour[12] > 2 * by_hour[4] and by_hour[20] > 2 * by_hour[3]  # peak vs quiet night
    assert by_day["Friday"] < 0.7 * by_day["Wednesday"]  # the weekend dip
    assert by_day["Friday"] < by_day["Thursday"] < by_day["Wednesday"]


def chi2_sf(stat: float, dof: int) -> float:
    """P(X >= stat) for chi-square(dof), Wilson–Hilferty normal approximation (fine for dof > 30)."""
    z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def test_labels_stay_exact_at_extreme_parameters():
    """1000 events/min over only 100 customers, FRAUD_RATE 0.1: velocity fires on ordinary traffic
    too, patterns overlap, and chunks are short; labels still equal the rules, all of them."""
    from darooghe.generator import Engine, GeneratorParams, Renderer

    params = GeneratorParams(event_rate=1000, peak_factor=5, fraud_rate=0.1, customer_count=100,
                             merchant_count=10, seed=3)
    engine = Engine(params)
    renderer = Renderer(engine.population, LABEL_HEADER)
    start = parse_ts("2026-03-21T08:00:00.000Z")  # 11:30 in Tehran, near the daily peak
    lines = []
    for k in range(12):  # 12 chunks of 90 s: bursts and 5-minute windows cross chunk boundaries
        batch = engine.chunk(start + k * 90_000, start + (k + 1) * 90_000)
        lines += renderer.record_lines(batch, batch.t_ms)
    events, header = [], {}
    for line in lines:
        r = parse_record(line)
        label = label_of(r)
        if label in INVALID_CODES:
            assert violations(r.value, r.timestamp) == {label}
            continue
        v = json.loads(r.value)
        v["t"] = parse_ts(v["timestamp"])
        events.append(v)
        header[v["transaction_id"]] = set(label.split(",")) if label else set()
    truth = rule_labels(events)
    assert {tid: header[tid] for tid in header} == truth
    counts = Counter(rule for rules in truth.values() for rule in rules)
    assert min(counts.values()) > 50 and len(events) > 10_000
    assert any(len(rules) > 1 for rules in truth.values())  # several rules on one transaction
