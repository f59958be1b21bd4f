"""Commission models: the approved history re-priced under flat, progressive and tiered, a structure
recommended per merchant category, and a per-transaction recommendation UDF checked against history.

The formulas are darooghe.commission's (Spark Columns and Python functions built from the same
constants). Assumptions, stated because the recommendation depends on them:

1. Volume does not react to pricing: every approved payment of the history is re-priced as it was
   (no merchant leaves, no customer changes amount). The result is the revenue of each structure
   on the observed mix of amounts, not a forecast.
2. Darooghe's cost of processing a payment does not depend on the commission structure: an assumed
   ASSUMED_COST_PER_TRANSACTION IRR (switch and network fees) plus ASSUMED_COST_BP of the amount
   (the acquiring bank's share). Profit = commission - cost; profit_margin = profit / amount.
   With cost independent of the structure, the most profitable structure is the one that collects
   the most; the cost figures say how much of it Darooghe keeps.
3. Ties (equal revenue) go to the simplest structure to explain to a merchant:
   STRUCTURE_PREFERENCE = flat, then tiered, then progressive.

Recommendation per category: the structure with the highest revenue, with the revenue and ratio
of each structure, the historical revenue (what the contracted mix actually collected), the
runner-up and the amount mix (shares of the approved amount below 500,000, up to 1,500,000 and
above) that explains the winner: tiered wins on small payments (2.5%), flat and tiered tie in the
middle band (2%), progressive wins above 2,000,000 where its 3% margin outgrows flat's 2%.

The UDF `recommend_structure_udf(amount)` picks, for one payment, the structure that collects the
most on it (darooghe.commission.commission, Python). `validate_recommendation_udf` checks it on the
history: agreement with the same choice computed natively in Spark (commission Columns), and per
category the revenue the UDF's picks would have collected against what was collected, with the
count of payments where the pick would have collected less than the history (expected 0).
"""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from darooghe import commission as cm
from darooghe import mongo_collections as mc
from darooghe.batch.columns import approved, ratio

MODELS_COLLECTION = mc.COMMISSION_MODELS
RECOMMENDATIONS_COLLECTION = mc.COMMISSION_RECOMMENDATIONS
STRUCTURES = cm.COMMISSION_TYPES
STRUCTURE_PREFERENCE = ("flat", "tiered", "progressive")
assert sorted(STRUCTURE_PREFERENCE) == sorted(STRUCTURES)
ASSUMED_COST_PER_TRANSACTION = 1_000
ASSUMED_COST_BP = 50

#: amount bands that explain the structures (the tiered bounds)
BANDS = (
    ("below_500k", None, cm.TIERED_LOW_BOUND),
    ("500k_to_1_5m", cm.TIERED_LOW_BOUND, cm.TIERED_MID_BOUND),
    ("above_1_5m", cm.TIERED_MID_BOUND, None),
)


def _band_condition(low: int | None, high: int | None) -> Column:
    amount = F.col("amount")
    if low is None:
        return amount < high
    if high is None:
        return amount > low
    return (amount >= low) & (amount <= high)


def best_structure(amount: int) -> str:
    """The structure that collects the most commission on one payment (ties: STRUCTURE_PREFERENCE)."""
    best, best_value = None, None
    for name in STRUCTURE_PREFERENCE:
        value = cm.commission(name, amount)
        if best_value is None or value > best_value:
            best, best_value = name, value
    return best


@F.pandas_udf(StringType())  # a type object: a DDL string would need a session at import
def recommend_structure_udf(amount: pd.Series) -> pd.Series:
    """PySpark UDF: the recommended commission structure of each payment amount."""
    picks = {a: best_structure(int(a)) for a in amount.dropna().unique()}
    return amount.map(picks)


def best_structure_column(amount: Column) -> Column:
    """The same choice as `best_structure`, natively in Spark from the commission Columns."""
    values = {name: cm.commission_column(name, amount) for name in STRUCTURES}
    best = F.greatest(*values.values())
    result = None
    for name in STRUCTURE_PREFERENCE:
        cond = values[name] == best
        result = F.when(cond, name) if result is None else result.when(cond, name)
    return result


def simulate_commission_models(transactions: DataFrame) -> DataFrame:
    """One row per (merchant_category, structure): the approved history re-priced."""
    priced = approved(transactions).select(
        "merchant_category",
        "amount",
        "commission_amount",
        *(cm.commission_column(name, F.col("amount")).alias(f"c_{name}") for name in STRUCTURES),
    )
    per_category = priced.groupBy("merchant_category").agg(
        F.count(F.lit(1)).alias("transaction_count"),
        F.sum("amount").alias("total_amount"),
        F.sum("commission_amount").alias("historical_revenue"),
        *(F.sum(f"c_{name}").alias(f"revenue_{name}") for name in STRUCTURES),
    )
    rows = (
        per_category.select(
            "merchant_category",
            "transaction_count",
            "total_amount",
            "historical_revenue",
            F.explode(
                F.array(
                    *(
                        F.struct(
                            F.lit(name).alias("structure"),
                            F.col(f"revenue_{name}").alias("revenue"),
                        )
                        for name in STRUCTURES
                    )
                )
            ).alias("s"),
        )
        .select("*", "s.structure", "s.revenue")
        .drop("s")
    )
    cost = F.col("transaction_count") * F.lit(ASSUMED_COST_PER_TRANSACTION) + F.col(
        "total_amount"
    ) * F.lit(ASSUMED_COST_BP / cm.BP)
    preference = F.array_position(F.array(*map(F.lit, STRUCTURE_PREFERENCE)), F.col("structure"))
    rank = Window.partitionBy("merchant_category").orderBy(F.col("revenue").desc(), preference)
    return (
        rows.withColumn("commission_ratio", ratio(F.col("revenue"), F.col("total_amount")))
        .withColumn("processing_cost", cost)
        .withColumn("profit", F.col("revenue") - F.col("processing_cost"))
        .withColumn("profit_margin", ratio(F.col("profit"), F.col("total_amount")))
        .withColumn("revenue_change", F.col("revenue") - F.col("historical_revenue"))
        .withColumn(
            "revenue_change_pct", ratio(F.col("revenue_change"), F.col("historical_revenue"))
        )
        .withColumn("rank", F.row_number().over(rank))
        .orderBy("merchant_category", "rank")
    )


def amount_mix(transactions: DataFrame) -> DataFrame:
    """Per category, the share of the approved amount in each band of BANDS."""
    a = approved(transactions)
    return a.groupBy("merchant_category").agg(
        *(
            ratio(
                F.sum(F.when(_band_condition(low, high), F.col("amount")).otherwise(0)),
                F.sum("amount"),
            ).alias(f"amount_share_{name}")
            for name, low, high in BANDS
        )
    )


def recommend_structures(simulation: DataFrame, mix: DataFrame) -> DataFrame:
    """One row per category: the recommended structure and the numbers behind it."""
    pivot = simulation.groupBy("merchant_category").agg(
        *(
            F.first(F.when(F.col("structure") == name, F.col(col)), ignorenulls=True).alias(
                f"{col}_{name}"
            )
            for name in STRUCTURES
            for col in ("revenue", "commission_ratio")
        )
    )
    best = simulation.where(F.col("rank") == 1).select(
        "merchant_category",
        "transaction_count",
        "total_amount",
        "historical_revenue",
        F.col("structure").alias("recommended_structure"),
        F.col("revenue").alias("recommended_revenue"),
        F.col("commission_ratio").alias("recommended_ratio"),
        F.col("profit").alias("recommended_profit"),
        F.col("profit_margin").alias("recommended_profit_margin"),
    )
    runner_up = simulation.where(F.col("rank") == 2).select(
        "merchant_category",
        F.col("structure").alias("runner_up_structure"),
        F.col("revenue").alias("runner_up_revenue"),
    )
    out = (
        best.join(runner_up, "merchant_category")
        .join(pivot, "merchant_category")
        .join(mix, "merchant_category", "left")
        .withColumn(
            "uplift_vs_historical", F.col("recommended_revenue") - F.col("historical_revenue")
        )
        .withColumn(
            "uplift_vs_historical_pct",
            ratio(F.col("uplift_vs_historical"), F.col("historical_revenue")),
        )
        .withColumn(
            "margin_over_runner_up", F.col("recommended_revenue") - F.col("runner_up_revenue")
        )
    )
    reason = F.format_string(
        "%s collects %,d IRR on %,d approved payments (%.3f%% of the amount), %,d more than %s "
        "and %,d more than the historical mix (%,d IRR); %.1f%% of the amount is below 500,000, "
        "%.1f%% above 1,500,000",
        F.col("recommended_structure"),
        F.col("recommended_revenue"),
        F.col("transaction_count"),
        F.col("recommended_ratio") * 100,
        F.col("margin_over_runner_up"),
        F.col("runner_up_structure"),
        F.col("uplift_vs_historical"),
        F.col("historical_revenue"),
        F.coalesce(F.col("amount_share_below_500k"), F.lit(0.0)) * 100,
        F.coalesce(F.col("amount_share_above_1_5m"), F.lit(0.0)) * 100,
    )
    return out.withColumn("reason", reason).orderBy("merchant_category")


def validate_recommendation_udf(transactions: DataFrame) -> DataFrame:
    """Per category: the UDF's picks on the approved history against Spark's own choice and
    against the commission actually collected."""
    picked = (
        approved(transactions)
        .select("merchant_category", "amount", "commission_amount")
        .withColumn("udf_pick", recommend_structure_udf(F.col("amount")))
        .withColumn("native_pick", best_structure_column(F.col("amount")))
    )
    picked = picked.withColumn(
        "udf_commission", cm.commission_column_by_type(F.col("udf_pick"), F.col("amount"))
    )
    return picked.groupBy("merchant_category").agg(
        F.count(F.lit(1)).alias("udf_transactions"),
        ratio(
            F.sum(F.when(F.col("udf_pick") == F.col("native_pick"), 1).otherwise(0)),
            F.count(F.lit(1)),
        ).alias("udf_agreement"),
        F.sum("udf_commission").alias("udf_revenue"),
        (F.sum("udf_commission") - F.sum("commission_amount")).alias("udf_uplift_vs_historical"),
        F.sum(F.when(F.col("udf_commission") > F.col("commission_amount"), 1).otherwise(0)).alias(
            "udf_transactions_better"
        ),
        F.sum(F.when(F.col("udf_commission") < F.col("commission_amount"), 1).otherwise(0)).alias(
            "udf_transactions_worse"
        ),
        *(
            F.sum(F.when(F.col("udf_pick") == name, 1).otherwise(0)).alias(f"udf_picks_{name}")
            for name in STRUCTURES
        ),
    )


def commission_recommendations(transactions: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(simulation rows, recommendations with the UDF validation) for the two collections."""
    simulation = simulate_commission_models(transactions).cache()
    recommendations = recommend_structures(simulation, amount_mix(transactions)).join(
        validate_recommendation_udf(transactions), "merchant_category", "left"
    )
    return simulation, recommendations.orderBy("merchant_category")
