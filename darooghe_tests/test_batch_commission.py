"""Commission efficiency and commission models on hand-built histories, figures worked out by hand.

History A (approved unless said):
  retail        t1 flat 100,000 (2,000)   t2 progressive 1,000,000 (15,000)   t3 declined flat 200,000
  food_service  t4 tiered 400,000 (10,000)  t5 pending flat 50,000  t6 tiered 2,000,000 (30,000)
"""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from darooghe import commission as cm
from darooghe.batch.commission_efficiency import commission_by_category
from darooghe.batch.commission_models import (
    ASSUMED_COST_BP,
    ASSUMED_COST_PER_TRANSACTION,
    best_structure,
    best_structure_column,
    commission_recommendations,
    recommend_structure_udf,
    simulate_commission_models,
)
from darooghe_tests.batch_data import lake_frame, txn

pytestmark = pytest.mark.spark

HISTORY_A = [
    txn("2026-03-23T05:00:00", customer="cust_1", amount=100_000, ctype="flat"),
    txn(
        "2026-03-23T06:00:00",
        customer="cust_2",
        amount=1_000_000,
        ctype="progressive",
        method="online",
    ),
    txn(
        "2026-03-23T07:00:00",
        customer="cust_1",
        amount=200_000,
        ctype="flat",
        status="declined",
        method="nfc",
    ),
    txn(
        "2026-03-23T08:00:00",
        customer="cust_3",
        merchant="merch_2",
        category="food_service",
        amount=400_000,
        ctype="tiered",
    ),
    txn(
        "2026-03-23T09:00:00",
        customer="cust_3",
        merchant="merch_2",
        category="food_service",
        amount=50_000,
        ctype="flat",
        status="pending",
    ),
    txn(
        "2026-03-23T10:00:00",
        customer="cust_4",
        merchant="merch_3",
        category="food_service",
        amount=2_000_000,
        ctype="tiered",
    ),
]

BOUNDARY_AMOUNTS = [
    1,
    24,
    25,
    49,
    50,
    99,
    100,
    101,
    149,
    150,
    199,
    200,
    499_999,
    500_000,
    500_001,
    500_025,
    999_999,
    1_000_000,
    1_499_999,
    1_500_000,
    1_500_001,
    1_500_033,
    1_999_999,
    2_000_000,
    2_000_001,
    12_345_678,
    987_654_321,
    10**12 + 7,
]


def test_spark_commission_columns_equal_the_python_formulas(spark):
    df = spark.createDataFrame([(a,) for a in BOUNDARY_AMOUNTS], "amount long")
    cols = [cm.commission_column(t, F.col("amount")).alias(t) for t in cm.COMMISSION_TYPES]
    rows = df.select("amount", *cols, cm.vat_column(F.col("amount")).alias("vat")).collect()
    for row in rows:
        for t in cm.COMMISSION_TYPES:
            assert row[t] == cm.commission(t, row.amount), (t, row.amount)
        assert row.vat == cm.vat(row.amount)
    by_type = df.crossJoin(
        spark.createDataFrame([(t,) for t in (*cm.COMMISSION_TYPES, "other")], "t string")
    )
    for row in by_type.select(
        "amount", "t", cm.commission_column_by_type(F.col("t"), F.col("amount")).alias("c")
    ).collect():
        assert row.c == (cm.commission(row.t, row.amount) if row.t != "other" else None)
    with pytest.raises(ValueError, match="'weekly' is not one of flat, progressive, tiered"):
        cm.commission_column("weekly", F.col("amount"))


def test_commission_by_category(spark):
    rows = {
        r.merchant_category: r.asDict()
        for r in commission_by_category(lake_frame(spark, HISTORY_A)).collect()
    }
    assert rows == {
        "food_service": {
            "merchant_category": "food_service",
            "transaction_count": 2,
            "total_amount": 2_400_000,
            "total_commission": 40_000,
            "avg_commission": 20_000.0,
            "commission_ratio": pytest.approx(40_000 / 2_400_000),
        },
        "retail": {
            "merchant_category": "retail",
            "transaction_count": 2,
            "total_amount": 1_100_000,
            "total_commission": 17_000,
            "avg_commission": 8_500.0,
            "commission_ratio": pytest.approx(17_000 / 1_100_000),
        },
    }


def test_best_structure_per_payment():
    # 100,000: tiered 2,500 > flat 2,000 > progressive 1,000
    assert best_structure(100_000) == "tiered"
    # 1,000,000: flat 20,000 = tiered 20,000 > progressive 15,000; the tie goes to flat
    assert best_structure(1_000_000) == "flat"
    # 2,000,000: flat 40,000 = progressive 40,000 > tiered 30,000 -> flat
    assert best_structure(2_000_000) == "flat"
    # 3,000,000: progressive 5,000 + 20,000 + 45,000 = 70,000 > flat 60,000 > tiered 45,000
    assert best_structure(3_000_000) == "progressive"


def test_udf_and_native_choice_agree(spark):
    df = spark.createDataFrame([(a,) for a in BOUNDARY_AMOUNTS], "amount long")
    rows = df.select(
        "amount",
        recommend_structure_udf(F.col("amount")).alias("udf"),
        best_structure_column(F.col("amount")).alias("native"),
    ).collect()
    for row in rows:
        assert row.udf == row.native == best_structure(row.amount), row.amount


def test_simulation_reprices_the_approved_history(spark):
    sim = {
        (r.merchant_category, r.structure): r
        for r in simulate_commission_models(lake_frame(spark, HISTORY_A)).collect()
    }
    revenue = {k: r.revenue for k, r in sim.items()}
    assert revenue == {
        ("retail", "flat"): 22_000,  # 2,000 + 20,000
        ("retail", "progressive"): 16_000,  # 1,000 + 15,000
        ("retail", "tiered"): 22_500,  # 2,500 + 20,000
        ("food_service", "flat"): 48_000,  # 8,000 + 40,000
        ("food_service", "progressive"): 44_000,  # 4,000 + 40,000
        ("food_service", "tiered"): 40_000,  # 10,000 + 30,000
    }
    ranks = {k: r["rank"] for k, r in sim.items()}
    assert ranks[("retail", "tiered")] == 1 and ranks[("retail", "flat")] == 2
    assert ranks[("food_service", "flat")] == 1 and ranks[("food_service", "tiered")] == 3
    tiered = sim[("retail", "tiered")]
    assert tiered.historical_revenue == 17_000 and tiered.transaction_count == 2
    cost = 2 * ASSUMED_COST_PER_TRANSACTION + 1_100_000 * ASSUMED_COST_BP / 10_000  # 2,000 + 5,500
    assert tiered.processing_cost == pytest.approx(cost)
    assert tiered.profit == pytest.approx(22_500 - cost)
    assert tiered.commission_ratio == pytest.approx(22_500 / 1_100_000)
    assert tiered.revenue_change == 5_500
    assert tiered.revenue_change_pct == pytest.approx(5_500 / 17_000)


def test_recommendation_with_numbers_and_udf_validation(spark):
    _, recs = commission_recommendations(lake_frame(spark, HISTORY_A))
    rows = {r.merchant_category: r for r in recs.collect()}
    retail, food = rows["retail"], rows["food_service"]
    assert (retail.recommended_structure, retail.recommended_revenue) == ("tiered", 22_500)
    assert (retail.runner_up_structure, retail.margin_over_runner_up) == ("flat", 500)
    assert retail.uplift_vs_historical == 5_500
    assert retail.amount_share_below_500k == pytest.approx(100_000 / 1_100_000)
    assert retail.amount_share_500k_to_1_5m == pytest.approx(1_000_000 / 1_100_000)
    assert retail.amount_share_above_1_5m == 0
    assert (retail.revenue_flat, retail.revenue_progressive, retail.revenue_tiered) == (
        22_000,
        16_000,
        22_500,
    )
    assert "tiered collects 22,500 IRR on 2 approved payments" in retail.reason
    assert (food.recommended_structure, food.recommended_revenue, food.runner_up_structure) == (
        "flat",
        48_000,
        "progressive",
    )
    # UDF picks: retail 100,000 -> tiered (2,500), 1,000,000 -> flat (20,000);
    # food 400,000 -> tiered (10,000), 2,000,000 -> flat (40,000)
    assert (retail.udf_revenue, retail.udf_uplift_vs_historical) == (22_500, 5_500)
    assert (retail.udf_picks_tiered, retail.udf_picks_flat, retail.udf_picks_progressive) == (
        1,
        1,
        0,
    )
    assert (retail.udf_transactions_better, retail.udf_transactions_worse) == (2, 0)
    assert (food.udf_revenue, food.udf_uplift_vs_historical) == (50_000, 10_000)
    assert (food.udf_transactions_better, food.udf_transactions_worse) == (
        1,
        0,
    )  # 400,000 ties history
    assert retail.udf_agreement == food.udf_agreement == 1.0


def test_udf_finds_a_history_that_collected_more_than_the_formula(spark):
    # A commission recorded above the formula (a negotiated surcharge): the UDF's pick collects less.
    history = [txn("2026-03-23T05:00:00", amount=100_000, ctype="flat", commission_amount=3_000)]
    _, recs = commission_recommendations(lake_frame(spark, history))
    row = recs.collect()[0]
    assert (row.udf_revenue, row.udf_transactions_worse, row.udf_uplift_vs_historical) == (
        2_500,
        1,
        -500,
    )
