"""Merchant category comparison, off-hours payments, merchant spikes and the daily fact, by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from darooghe.batch.business_hours import NO_REFERENCE, REFERENCE
from darooghe.batch.category_comparison import category_comparison
from darooghe.batch.customer_segments import rfm
from darooghe.batch.daily_activity import UNSEGMENTED, daily_activity, daily_id
from darooghe.batch.documents import collect_documents
from darooghe.batch.merchant_spikes import merchant_spikes, spike_id
from darooghe.batch.merchants import CATEGORY_DIFFERS, coverage
from darooghe.batch.off_hours import off_hours_by_merchant, off_hours_transactions
from darooghe_tests.batch_data import lake_frame, txn, utc
from darooghe_tests.test_batch_commission import HISTORY_A

pytestmark = pytest.mark.spark


def test_category_comparison(spark):
    rows = {
        r.merchant_category: r for r in category_comparison(lake_frame(spark, HISTORY_A)).collect()
    }
    retail, food = rows["retail"], rows["food_service"]
    assert (
        retail.transaction_count,
        retail.approved_count,
        retail.declined_count,
        retail.pending_count,
    ) == (3, 2, 1, 0)
    assert (retail.total_amount, retail.avg_amount, retail.median_amount, retail.max_amount) == (
        1_100_000,
        550_000.0,
        550_000.0,
        1_000_000,
    )
    assert retail.total_commission == 17_000 and retail.avg_commission == 8_500.0
    assert retail.approval_rate == pytest.approx(2 / 3) and retail.decline_rate == pytest.approx(
        1 / 3
    )
    assert (
        retail.share_pos,
        retail.share_online,
        retail.share_nfc,
        retail.share_mobile,
    ) == pytest.approx((1 / 3, 1 / 3, 1 / 3, 0))
    assert (retail.unique_customers, retail.unique_merchants) == (2, 1)
    assert retail.share_of_transactions == 0.5
    assert retail.share_of_amount == pytest.approx(1_100_000 / 3_500_000)
    assert retail.share_of_commission == pytest.approx(17_000 / 57_000)
    assert (food.pending_count, food.total_amount, food.median_amount, food.total_commission) == (
        1,
        2_400_000,
        1_200_000.0,
        40_000,
    )
    assert (food.rank_by_amount, retail.rank_by_amount) == (1, 2)


MERCHANTS = [
    {"merchant_id": "merch_1", "merchant_category": "retail", "open_hour": 9, "close_hour": 21},
    {"merchant_id": "merch_5", "merchant_category": "retail", "open_hour": 7, "close_hour": 15},
]
# Tehran local = UTC + 3:30; merch_9 has no reference record, merch_5's payments name another category
OFF_HOURS_HISTORY = [
    txn("2026-03-23T05:00:00", tid="p1", method="pos"),  # 08:30 < 9: off
    txn("2026-03-23T17:29:00", tid="p2", method="nfc"),  # 20:59: open
    txn("2026-03-22T23:30:00", tid="p3", method="online"),  # 03:00 online: not judged
    txn("2026-03-23T17:30:00", tid="p4", method="pos", status="declined"),  # 21:00: off
    txn("2026-03-23T01:00:00", tid="p5", merchant="merch_9", category="government"),  # 04:30
    txn(
        "2026-03-23T23:40:00", tid="p6", merchant="merch_9", category="government", method="online"
    ),
    txn("2026-03-23T11:40:00", tid="p7", merchant="merch_5", category="food_service"),  # 15:10: off
]


def test_off_hours_transactions(spark):
    rows = off_hours_transactions(lake_frame(spark, OFF_HOURS_HISTORY), MERCHANTS).collect()
    got = {
        r.transaction_id: (r.local_hour, r.open_hour, r.close_hour, r.hours_source) for r in rows
    }
    assert got == {  # p5: merch_9 has no known hours, so it is not called off-hours
        "p1": (8, 9, 21, REFERENCE),
        "p4": (21, 9, 21, REFERENCE),
        "p7": (15, 7, 15, REFERENCE),
    }


def test_off_hours_by_merchant(spark):
    rows = {
        r.merchant_id: r
        for r in off_hours_by_merchant(lake_frame(spark, OFF_HOURS_HISTORY), MERCHANTS).collect()
    }
    m1, m9 = rows["merch_1"], rows["merch_9"]
    assert (m1.in_person_count, m1.off_hours_count, m1.off_hours_amount) == (
        3,
        2,
        100_000,
    )  # p4 declined
    assert m1.off_hours_share == pytest.approx(2 / 3)
    assert (m1.open_hour, m1.close_hour, m1.hours_source) == (9, 21, REFERENCE)
    # not judged: listed with its payments, no hours and no off-hours figures
    assert (m9.in_person_count, m9.open_hour, m9.close_hour, m9.hours_source) == (
        1,
        None,
        None,
        NO_REFERENCE,
    )
    assert (m9.off_hours_count, m9.off_hours_amount, m9.off_hours_share) == (None, None, None)


def test_coverage_reports_merchants_the_register_does_not_describe(spark):
    rows = coverage(lake_frame(spark, OFF_HOURS_HISTORY), MERCHANTS).collect()
    got = [
        (r.merchant_id, r.merchant_category, r.reference_category, r.transaction_count,
         r.in_person_count, r.problem)
        for r in rows
    ]  # fmt: skip
    assert got == [
        ("merch_5", "food_service", "retail", 1, 1, CATEGORY_DIFFERS),
        ("merch_9", "government", None, 2, 1, NO_REFERENCE),
    ]


H0 = utc("2026-03-20T00:00:00")


def _at(hours: float, merchant: str, n: int) -> list[dict]:
    t = H0 + dt.timedelta(hours=hours)
    return [
        txn(t + dt.timedelta(seconds=i), merchant=merchant, customer=f"cust_{i}") for i in range(n)
    ]


def test_merchant_spikes(spark):
    history = []
    for h in range(24):  # merch_1: one payment an hour for a day
        history += _at(h, "merch_1", 1)
    history += _at(24, "merch_1", 6)  # 6 >= 3 x mean 1.0 and >= 5: spike
    history += _at(25, "merch_1", 4)  # below MIN_SPIKE_COUNT
    history += _at(
        26, "merch_1", 5
    )  # baseline H2..H25: 22 + 6 + 4 = 32 / 24 = 1.33; 5 >= 4.0: spike
    history += _at(0, "merch_2", 6)  # no baseline yet: never a spike
    history += _at(0, "merch_3", 1) + _at(30, "merch_3", 5)  # idle day, then 5: spike (mean 0)
    docs = {
        d["_id"]: d
        for d in collect_documents(merchant_spikes(lake_frame(spark, history)), spike_id)
    }
    assert set(docs) == {
        "merch_1|2026-03-21T00:00Z",
        "merch_1|2026-03-21T02:00Z",
        "merch_3|2026-03-21T06:00Z",
    }
    first = docs["merch_1|2026-03-21T00:00Z"]
    assert (
        first["transaction_count"],
        first["baseline_mean"],
        first["baseline_std"],
        first["ratio"],
    ) == (6, 1.0, 0.0, 6.0)
    assert first["z_score"] is None
    second = docs["merch_1|2026-03-21T02:00Z"]
    assert second["baseline_mean"] == pytest.approx(32 / 24)
    assert second["ratio"] == pytest.approx(5 / (32 / 24))
    assert docs["merch_3|2026-03-21T06:00Z"]["ratio"] is None


def test_daily_activity(spark):
    frame = lake_frame(
        spark, HISTORY_A + [txn("2026-03-23T21:00:00", customer="cust_9", status="declined")]
    )
    docs = {d["_id"]: d for d in collect_documents(daily_activity(frame, rfm(frame)), daily_id)}
    # HISTORY_A's events are on Tehran day 2026-03-23; 21:00Z is 00:30 on the 24th
    late = docs[f"2026-03-24|merch_1|{UNSEGMENTED}"]
    assert (late["week"], late["month"], late["transaction_count"], late["approved_count"]) == (
        "2026-W13",
        "2026-03",
        1,
        0,
    )
    retail = [d for k, d in docs.items() if k.startswith("2026-03-23|merch_1|")]
    assert sum(d["transaction_count"] for d in retail) == 3
    assert sum(d["approved_amount"] for d in retail) == 1_100_000
    assert sum(d["commission"] for d in retail) == 17_000
    assert sum(d["declined_count"] for d in retail) == 1
    assert sum(d["commission"] for d in docs.values()) == 57_000
    # the markers count each (day, merchant) and each (segment, merchant) exactly once
    days = {(d["local_date"], d["merchant_id"]) for d in docs.values()}
    assert sum(d["merchant_day_first"] for d in docs.values()) == len(days)
    pairs = {(d["segment"], d["merchant_id"]) for d in docs.values()}
    assert sum(d["segment_merchant_first"] for d in docs.values()) == len(pairs)
