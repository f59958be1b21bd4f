"""The stateful processor's bookkeeping (state round trip, eviction timer) with PySpark's TwsTester.

TwsTester runs a StatefulProcessor in memory, without a Spark session: fast checks that windows
survive the trip through the state schema and that the event-time scan drops idle customers.
The processor is a pandas one (transformWithStateInPandas) holding each bucket's rows in event-time
slices; `RowsTester` below feeds it Rows and reads a customer's window back out of the slices, so the
checks read as they did for the per-customer state.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
from pyspark.sql import Row
from pyspark.sql.streaming.tws_tester import TwsTester

from darooghe.fraud.columnar import decode_rows
from darooghe.fraud.profiles import ProfileSnapshot
from darooghe.fraud.rules import HORIZON_MS
from darooghe.fraud.txn import iso_ms
from darooghe.fraud.window import ALERTED_FLAGS
from darooghe.streaming import fraud_processor
from darooghe.streaming.fraud_processor import (
    DECISION,
    HELD_VERSION,
    INPUT_COLUMNS,
    NEXT_SCAN,
    SCAN_EVERY_MS,
    SLICES,
    FraudDetector,
    decode_manifest,
    encode_manifest,
    pack_buckets,
)
from darooghe_tests.fraud_streams import MASHHAD, MIN, SEC, T0, TEHRAN

WINDOWS = SLICES
BUCKET = 7


def row(tid: str, ms: int, where=TEHRAN, amount: int = 100_000, customer: str = "cust_1") -> Row:
    return Row(
        bucket=BUCKET,
        customer_id=customer,
        transaction_id=tid,
        event_ms=T0 + ms,
        lat=where[0],
        lng=where[1],
        amount=amount,
        risk_level=2,
    )


class RowsTester(TwsTester):
    """TwsTester for the pandas processor, fed Rows (packed as the query packs them) and answering
    with Rows: the alerts, late and redelivered rows; the batch's decision rows are kept apart in
    `decisions` (their content is test_fraud_decisions')."""

    def test(self, key, input: list[Row]) -> list[Row]:
        frame = pd.DataFrame([tuple(r) for r in input], columns=list(INPUT_COLUMNS))
        batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        packed = pa.Table.from_batches(list(pack_buckets(iter([batch])))).to_pandas()
        out = self.testInPandas(key, packed)
        rows = [Row(**r) for r in out.to_dict("records")] if len(out) else []
        self.decisions = [r for r in rows if r.kind == DECISION]
        return [r for r in rows if r.kind != DECISION]


def make_tester(tmp_path, averages=None) -> RowsTester:
    snapshot = tmp_path / "profiles.json"
    ProfileSnapshot(snapshot).write(averages or {})
    # The query marks no input column as event time (late rows reach the processor), so the
    # tester's own late filter is switched off by an extractor that never says "late".
    return RowsTester(
        FraudDetector(str(snapshot)),
        timeMode="EventTime",
        outputMode="Append",
        eventTimeExtractor=lambda r: 2**62,
    )


def held(t: TwsTester, customer: str = "cust_1") -> list | None:
    """The customer's held transactions, [transaction_id, event_ms, lat, lng, amount, alerted
    bits] in event-time order, gathered from the bucket's slices (None: nothing held)."""
    found = []
    for (blob,) in t.peekMapState(WINDOWS, BUCKET).values():
        rows = decode_rows(blob)
        for i, txn in enumerate(rows.txns()):
            if txn.customer_id == customer:
                found.append([*txn[:1], *txn[2:6], int(rows.flags[i])])
    return sorted(found, key=lambda h: (h[1], h[0])) or None


def latest(t: TwsTester, customer: str = "cust_1") -> int:
    return held(t, customer)[-1][1]


def test_state_round_trip_alerts_once_and_completes_earlier_transactions(tmp_path):
    t = make_tester(tmp_path, {"cust_1": 10_000.0})
    out = t.test(
        BUCKET,
        [row(f"t{i}", i * SEC) for i in (0, 1, 2, 4, 5)]
        + [row("big", 6 * SEC, amount=200_000), row("other", 0, customer="cust_2")],
    )
    assert [(r.kind, r.rule, r.transaction_id) for r in out] == [
        ("alert", "AMOUNT_ANOMALY", "big"),
        ("alert", "VELOCITY", "big"),
    ]
    assert [(r.transaction_id, json.loads(r.value)["decision"]) for r in t.decisions] == [
        ("big", "REVIEW")
    ]
    # A late arrival within the lateness completes the burst of t5, seen in the previous batch;
    # a redelivered transaction is reported and ignored.
    out = t.test(BUCKET, [row("t3", 3 * SEC), row("t1", 1 * SEC)])
    assert [(r.kind, r.rule, r.transaction_id) for r in out] == [
        ("alert", "VELOCITY", "t5"),
        ("duplicate", None, "t1"),
    ]
    value = json.loads(out[0].value)
    assert value["alert_id"] == out[0].alert_id and value["evidence"]["count"] == 6
    window = held(t)
    assert [h[0] for h in window] == ["t0", "t1", "t2", "t3", "t4", "t5", "big"]
    assert {h[0]: h[5] for h in window}["big"] == ALERTED_FLAGS["VELOCITY"]
    assert latest(t) == T0 + 6 * SEC  # latest event
    assert [h[0] for h in held(t, "cust_2")] == ["other"]


def test_late_row_is_reported_with_the_watermark(tmp_path):
    t = make_tester(tmp_path)
    t.setWatermark(T0 + 10 * MIN)
    out = t.test(BUCKET, [row("old", 0, MASHHAD)])
    assert [(r.kind, r.transaction_id) for r in out] == [("late", "old")]
    value = json.loads(out[0].value)
    assert value["behind_watermark_ms"] == 10 * MIN
    assert value["watermark"] == iso_ms(T0 + 10 * MIN) and value["event_time"] == iso_ms(T0)
    assert value["location"] == {"lat": MASHHAD[0], "lng": MASHHAD[1]}
    assert value["judged_by"] == [] and value["alerts"] == []  # no average: nothing judges it
    assert held(t) is None


def test_late_row_with_a_large_amount_alerts_and_says_so(tmp_path):
    t = make_tester(tmp_path, {"cust_1": 10_000.0})
    t.setWatermark(T0 + 10 * MIN)
    out = t.test(BUCKET, [row("big", 0, amount=500_000), row("small", SEC)])
    assert [(r.kind, r.rule, r.transaction_id) for r in out] == [
        ("alert", "AMOUNT_ANOMALY", "big"),
        ("late", None, "big"),
        ("late", None, "small"),
    ]
    big, small = json.loads(out[1].value), json.loads(out[2].value)
    assert big["amount"] == 500_000 and big["judged_by"] == ["AMOUNT_ANOMALY"]
    assert big["not_judged_by"] == ["VELOCITY", "GEO_IMPOSSIBLE"]
    assert big["alerts"] == [{"rule": "AMOUNT_ANOMALY", "alert_id": out[0].alert_id}]
    assert small["judged_by"] == ["AMOUNT_ANOMALY"] and small["alerts"] == []
    assert held(t) is None


def test_event_time_scan_drops_idle_customers_only(tmp_path):
    t = make_tester(tmp_path)
    t.setWatermark(T0)
    t.test(BUCKET, [row("a", 0), row("b", MIN), row("c", 4 * MIN, customer="cust_2")])
    (scan,) = t.peekValueState(NEXT_SCAN, BUCKET)
    assert scan == T0 + SCAN_EVERY_MS
    # At T0 + 6 min + 1 ms everything of cust_1 is out of reach, cust_2's payment is not.
    t.setWatermark(T0 + MIN + HORIZON_MS + 1)
    assert held(t) is None and [h[0] for h in held(t, "cust_2")] == ["c"]
    assert t.peekValueState(NEXT_SCAN, BUCKET) == (T0 + MIN + HORIZON_MS + 1 + SCAN_EVERY_MS,)
    t.setWatermark(T0 + 20 * MIN)
    assert t.peekMapState(WINDOWS, BUCKET) == {} and t.peekValueState(NEXT_SCAN, BUCKET) is None
    # A new payment after eviction starts a fresh window (and a new scan).
    assert t.test(BUCKET, [row("d", 25 * MIN, MASHHAD)]) == []
    assert [h[0] for h in held(t)] == ["d"] and t.peekValueState(NEXT_SCAN, BUCKET) is not None


def test_active_customer_is_trimmed_on_input(tmp_path):
    t = make_tester(tmp_path)
    t.test(BUCKET, [row("a", 0)])
    t.setWatermark(T0 + 5 * MIN + 1)
    t.test(BUCKET, [row("b", 6 * MIN)])
    assert [h[0] for h in held(t)] == ["b"]


def test_a_batch_rerun_on_rolled_back_state_judges_as_the_first_run(tmp_path):
    """The worker keeps the held rows it saved (no state read while the state's version token is
    the cached one). Spark re-runs a failed micro-batch on the state of the batch before: the token
    read is then the older one, so the rows come from the state, and the re-run judges as the
    first run did (with the cache trusted, its rows would all be redeliveries)."""
    t = make_tester(tmp_path)
    t.test(BUCKET, [row(f"t{i}", i * SEC) for i in range(4)])
    before = (t.peekMapState(WINDOWS, BUCKET), t.peekValueState(HELD_VERSION, BUCKET))
    burst = [row(f"u{i}", (4 + i) * SEC) for i in range(3)]
    first = [(r.kind, r.rule, r.transaction_id) for r in t.test(BUCKET, burst)]
    assert first == [("alert", "VELOCITY", "u1"), ("alert", "VELOCITY", "u2")]
    assert t.peekValueState(HELD_VERSION, BUCKET) != before[1]
    # The batch's state commit failed: Spark restores the state as it was before it.
    t.updateMapState(WINDOWS, BUCKET, before[0])
    t.updateValueState(HELD_VERSION, BUCKET, before[1])
    rerun = [(r.kind, r.rule, r.transaction_id) for r in t.test(BUCKET, burst)]
    assert rerun == first
    # And the cache serves the next batch: a redelivery is known without reading the state.
    again = t.test(BUCKET, [row("u2", 6 * SEC)])
    assert [(r.kind, r.transaction_id) for r in again] == [("duplicate", "u2")]


def test_a_worker_behind_reads_only_the_slices_that_changed(tmp_path, monkeypatch):
    """Spark hands a state partition to whichever Python worker is idle, so a worker often finds
    a bucket saved by the other one since it last saw it. The manifest's per-slice tokens let it
    keep the slices that did not change and read only the others; here the slice that changed
    holds the fifth payment, which the sixth's VELOCITY count needs."""
    fraud_processor._HELD.clear()
    t = make_tester(tmp_path)
    t.test(BUCKET, [row(f"t{i}", ms) for i, ms in enumerate((0, 25 * SEC, 45 * SEC, 65 * SEC))])
    assert len(decode_manifest(t.peekValueState(HELD_VERSION, BUCKET)[0])) == 4
    (key,) = fraud_processor._HELD
    behind = fraud_processor._HELD[key]  # this worker's view after the first batch
    t.test(BUCKET, [row("t4", 70 * SEC)])  # the other worker: the slice at 60 s changes
    fraud_processor._HELD[key] = behind
    decoded = []
    monkeypatch.setattr(
        fraud_processor, "decode_rows", lambda blob: decoded.append(1) or decode_rows(blob)
    )
    out = t.test(BUCKET, [row("t5", 80 * SEC)])
    assert [(r.kind, r.rule, r.transaction_id) for r in out] == [("alert", "VELOCITY", "t5")]
    assert len(decoded) == 2  # the batch's packed input and the one slice that changed


def test_state_of_the_single_token_layout_is_read_whole_and_given_a_manifest(tmp_path):
    """A checkpoint written before manifests holds one token per bucket: its slices are all read
    (no cached slice can match), named afresh, and the next batch judges with them."""
    fraud_processor._HELD.clear()
    t = make_tester(tmp_path)
    t.test(BUCKET, [row(f"t{i}", i * 20 * SEC) for i in range(5)])
    t.updateValueState(HELD_VERSION, BUCKET, ("0123456789abcdef0123456789abcdef",))
    out = t.test(BUCKET, [row("t5", 100 * SEC)])
    assert [(r.kind, r.rule, r.transaction_id) for r in out] == [("alert", "VELOCITY", "t5")]
    manifest = decode_manifest(t.peekValueState(HELD_VERSION, BUCKET)[0])
    assert sorted(manifest) == sorted(s for (s,) in t.peekMapState(WINDOWS, BUCKET))
    assert len(manifest) == 6


def test_manifest_round_trip():
    assert decode_manifest(encode_manifest({})) == {}
    m = {T0: "a" * 32, T0 + 20 * SEC: "b" * 32}
    assert decode_manifest(encode_manifest(m)) == m
    assert decode_manifest("0123456789abcdef0123456789abcdef") is None
