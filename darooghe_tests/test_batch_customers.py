"""Customer segments (RFM) and customer profiles on a hand-built history.

Reference time R = 2026-03-27T12:00Z (the newest event). Customer k (1..5) has 6 - k approved
payments of 1,000,000, the last one k - 1 days before R; cust_6 only a declined payment; cust_2
pays three times from Shiraz and once from Tabriz.

With five customers, percent_rank gives 0, 0.25, 0.5, 0.75, 1 -> scores 1, 2, 3, 4, 5:
  cust_1 (5,5,5) Champions   cust_2 (4,4,4) Champions   cust_3 (3,3,3) Need Attention
  cust_4 (2,2,2) Hibernating  cust_5 (1,1,1) Lost
"""

from __future__ import annotations

import datetime as dt

import pytest

from darooghe.batch.customer_profiles import customer_profiles
from darooghe.batch.customer_segments import SEGMENT_NAMES, rfm, segment_of, segment_summary
from darooghe_tests.batch_data import lake_frame, txn, utc

pytestmark = pytest.mark.spark

R = utc("2026-03-27T12:00:00")


def _history() -> list[dict]:
    out = []
    for k in range(1, 6):
        last = R - dt.timedelta(days=k - 1)
        for i in range(6 - k):
            city = "Tabriz" if (k == 2 and i == 1) else ("Shiraz" if k == 2 else "Tehran")
            out.append(
                txn(
                    last - dt.timedelta(hours=i),
                    customer=f"cust_{k}",
                    amount=1_000_000,
                    city=city,
                    customer_type="business" if k == 1 else "individual",
                )
            )
    out.append(txn(R - dt.timedelta(days=10), customer="cust_6", amount=500_000, status="declined"))
    return out


HISTORY = _history()


def test_segment_rules_in_python():
    assert segment_of(5, 5, 5) == "Champions"
    assert segment_of(3, 4, 1) == "Loyal Customers"
    assert segment_of(3, 2, 5) == "Big Spenders"
    assert segment_of(5, 1, 1) == "New Customers"
    assert segment_of(4, 3, 2) == "Potential Loyalists"
    assert segment_of(2, 4, 1) == "At Risk"
    assert segment_of(1, 2, 5) == "Lost"
    assert segment_of(2, 1, 3) == "Hibernating"
    assert segment_of(3, 3, 3) == "Need Attention"
    # every triple has a name from the list
    assert {
        segment_of(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
    } <= set(SEGMENT_NAMES)


def test_rfm_scores_and_names(spark):
    rows = {r.customer_id: r for r in rfm(lake_frame(spark, HISTORY)).collect()}
    assert set(rows) == {f"cust_{k}" for k in range(1, 6)}  # cust_6 never paid
    got = {
        c: (r.recency_days, r.frequency, r.monetary, r.r_score, r.f_score, r.m_score, r.segment)
        for c, r in rows.items()
    }
    assert got == {
        "cust_1": (0.0, 5, 5_000_000, 5, 5, 5, "Champions"),
        "cust_2": (1.0, 4, 4_000_000, 4, 4, 4, "Champions"),
        "cust_3": (2.0, 3, 3_000_000, 3, 3, 3, "Need Attention"),
        "cust_4": (3.0, 2, 2_000_000, 2, 2, 2, "Hibernating"),
        "cust_5": (4.0, 1, 1_000_000, 1, 1, 1, "Lost"),
    }


def test_rfm_reference_time_can_be_given(spark):
    rows = {
        r.customer_id: r
        for r in rfm(lake_frame(spark, HISTORY), R + dt.timedelta(hours=12)).collect()
    }
    assert rows["cust_1"].recency_days == pytest.approx(0.5)


def test_equal_values_get_equal_scores(spark):
    history = [txn(R, customer=c, amount=1_000) for c in ("cust_1", "cust_2", "cust_3")]
    rows = rfm(lake_frame(spark, history)).collect()
    assert {(r.r_score, r.f_score, r.m_score) for r in rows} == {(1, 1, 1)}


def test_segment_summary(spark):
    rows = {r.segment: r for r in segment_summary(rfm(lake_frame(spark, HISTORY))).collect()}
    champions = rows["Champions"]
    assert (
        champions.customers,
        champions.avg_recency_days,
        champions.avg_frequency,
        champions.avg_monetary,
    ) == (2, 0.5, 4.5, 4_500_000.0)
    assert champions.share == pytest.approx(0.4)
    assert (rows["Lost"].customers, rows["Lost"].avg_monetary) == (1, 1_000_000.0)
    assert set(rows) == {"Champions", "Need Attention", "Hibernating", "Lost"}


def test_customer_profiles(spark):
    rows = {r.customer_id: r for r in customer_profiles(lake_frame(spark, HISTORY)).collect()}
    assert set(rows) == {f"cust_{k}" for k in range(1, 6)}  # cust_6 has no approved payment
    c1 = rows["cust_1"]
    assert (c1.txn_count, c1.avg_amount, c1.total_amount, c1.valid_txn_count) == (
        5,
        1_000_000.0,
        5_000_000,
        5,
    )
    assert (c1.home_city, c1.customer_type, c1.segment) == ("Tehran", "business", "Champions")
    assert rows["cust_2"].home_city == "Shiraz"  # the one payment from Tabriz does not move home
    assert rows["cust_5"].segment == "Lost"


def test_customer_profile_documents(spark):
    from darooghe.batch.documents import collect_documents

    docs = {
        d["_id"]: d
        for d in collect_documents(customer_profiles(lake_frame(spark, HISTORY)), "customer_id")
    }
    c1 = docs["cust_1"]
    assert c1["first_seen"] == R - dt.timedelta(hours=4)
    assert c1["last_seen"] == R
    assert c1["avg_amount"] == 1_000_000.0 and isinstance(c1["avg_amount"], float)
    assert docs["cust_2"]["first_seen"] == R - dt.timedelta(days=1, hours=3)


def test_nearest_city_ranks_as_the_great_circle_distance(spark):
    import numpy as np
    from pyspark.sql import functions as F

    from darooghe.batch.customer_profiles import nearest_city
    from darooghe.generator.population import nearest_city as great_circle_nearest

    rng = np.random.default_rng(7)
    points = [(float(a), float(b)) for a, b in zip(rng.uniform(25, 40, 400), rng.uniform(44, 63, 400))]
    df = spark.createDataFrame(points, "lat double, lng double")
    got = [r.city for r in df.select(nearest_city(F.col("lat"), F.col("lng")).alias("city")).collect()]
    assert got == [great_circle_nearest(lat, lng)[0].name for lat, lng in points]
