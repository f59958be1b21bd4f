"""Temporal patterns in Tehran time (UTC+03:30) on a hand-built history.

e5 2026-03-20T06:00Z = Fri 09:30 Tehran  retail approved 50,000         (ISO week 2026-W12)
e1 2026-03-23T05:00Z = Mon 08:30         retail approved 100,000        (W13 from here on)
e2 2026-03-23T05:20Z = Mon 08:50         retail declined 50,000
e3 2026-03-23T20:45Z = Tue 00:15         food_service approved 300,000  (UTC Monday, Tehran Tuesday)
e4 2026-03-27T10:00Z = Fri 13:30         retail approved 200,000
"""

from __future__ import annotations

import datetime as dt

import pytest

from darooghe.batch.columns import part_of_day_name
from darooghe.batch.temporal_patterns import (
    day_parts_by_category,
    hour_weekday_profile,
    hourly_profile,
    spending_trend,
)
from darooghe_tests.batch_data import lake_frame, txn, utc

pytestmark = pytest.mark.spark

HISTORY = [
    txn("2026-03-20T06:00:00", amount=50_000),
    txn("2026-03-23T05:00:00", amount=100_000),
    txn("2026-03-23T05:20:00", amount=50_000, status="declined"),
    txn("2026-03-23T20:45:00", amount=300_000, category="food_service", merchant="merch_2"),
    txn("2026-03-27T10:00:00", amount=200_000),
]


def test_parts_of_day():
    assert [part_of_day_name(h) for h in (4, 5, 11, 12, 16, 17, 20, 21, 23, 0)] == [
        "night",
        "morning",
        "morning",
        "afternoon",
        "afternoon",
        "evening",
        "evening",
        "night",
        "night",
        "night",
    ]
    with pytest.raises(ValueError, match="hour 24 is not a local hour"):
        part_of_day_name(24)


def test_hour_weekday_grid(spark):
    rows = hour_weekday_profile(lake_frame(spark, HISTORY)).collect()
    assert len(rows) == 7 * 24
    busy = {
        (r.day_of_week, r.hour): (r.day_name, r.transaction_count, r.approved_count, r.total_amount)
        for r in rows
        if r.transaction_count
    }
    assert busy == {
        (0, 8): ("Monday", 2, 1, 100_000),
        (1, 0): ("Tuesday", 1, 1, 300_000),
        (4, 9): ("Friday", 1, 1, 50_000),
        (4, 13): ("Friday", 1, 1, 200_000),
    }
    assert sum(r.transaction_count for r in rows) == 5


def test_hourly_profile_and_peaks(spark):
    rows = {r.hour: r for r in hourly_profile(lake_frame(spark, HISTORY)).collect()}
    assert len(rows) == 24
    assert rows[8].transaction_count == 2 and rows[8].share == pytest.approx(0.4)
    assert rows[13].share == pytest.approx(0.2) and rows[5].share == 0
    # peaks: hour 8 (2), then the earliest of the hours with 1: 0, then 9
    assert {h: r.peak_rank for h, r in rows.items() if r.is_peak} == {8: 1, 0: 2, 9: 3}
    assert rows[13].is_peak is False and rows[13].peak_rank is None


def test_part_of_day_per_category(spark):
    rows = {
        (r.merchant_category, r.part_of_day): r
        for r in day_parts_by_category(lake_frame(spark, HISTORY)).collect()
    }
    assert len(rows) == 2 * 4
    assert (
        rows["retail", "morning"].transaction_count,
        rows["retail", "morning"].total_amount,
    ) == (3, 150_000)
    assert rows["retail", "morning"].share == pytest.approx(0.75)
    assert rows["retail", "afternoon"].share == pytest.approx(0.25)
    assert rows["retail", "night"].transaction_count == 0
    assert (
        rows["food_service", "night"].transaction_count,
        rows["food_service", "night"].share,
    ) == (1, 1.0)


def test_spending_trend_daily_and_weekly(spark):
    rows = {
        (r.period, r.period_key): r for r in spending_trend(lake_frame(spark, HISTORY)).collect()
    }
    assert sorted(rows) == [
        ("day", "2026-03-20"),
        ("day", "2026-03-23"),
        ("day", "2026-03-24"),
        ("day", "2026-03-27"),
        ("week", "2026-W12"),
        ("week", "2026-W13"),
    ]
    mon = rows["day", "2026-03-23"]
    assert (mon.transaction_count, mon.approved_count, mon.total_amount) == (2, 1, 100_000)
    assert mon.growth is None  # 2026-03-22 is absent: no previous day to compare with
    tue = rows["day", "2026-03-24"]
    assert tue.growth == pytest.approx(2.0) and tue.count_growth == pytest.approx(
        -0.5
    )  # 300k vs 100k
    assert rows["day", "2026-03-27"].growth is None
    w13 = rows["week", "2026-W13"]
    assert (w13.transaction_count, w13.approved_count, w13.total_amount) == (4, 3, 600_000)
    assert w13.growth == pytest.approx(11.0) and w13.count_growth == pytest.approx(3.0)
    assert rows["week", "2026-W12"].growth is None


def test_trend_period_start_is_the_tehran_day(spark):
    from darooghe.batch.documents import collect_documents
    from darooghe.batch.temporal_patterns import trend_id

    docs = {
        d["_id"]: d for d in collect_documents(spending_trend(lake_frame(spark, HISTORY)), trend_id)
    }
    mon = docs["day|2026-03-23"]
    assert mon["period_start"] == utc("2026-03-23T00:00:00")
    assert mon["period_start_utc"] == utc("2026-03-22T20:30:00")
    assert docs["week|2026-W13"]["period_start"] == utc("2026-03-23T00:00:00")
    assert docs["week|2026-W12"]["period_start_utc"] == utc("2026-03-15T20:30:00")
    assert mon["period_start"].tzinfo == dt.UTC
