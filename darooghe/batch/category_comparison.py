"""Merchant categories side by side: volume, approval, spending, commission, reach and risk.

Volume and status counts cover every valid transaction; amounts and commission approved ones only.
Shares are of the all-category totals; ranks are 1 = largest approved amount.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import is_approved, ratio
from darooghe.schema import PAYMENT_METHODS, STATUSES

COLLECTION = mc.CATEGORY_COMPARISON
KEY = "merchant_category"


def _distinct_count(transactions: DataFrame, column: str, name: str) -> DataFrame:
    # One distinct count per small aggregation: several countDistinct in one agg make Spark copy
    # every row once per distinct column (Expand), which dominated this analysis.
    return (
        transactions.select("merchant_category", column)
        .distinct()
        .groupBy("merchant_category")
        .agg(F.count(F.lit(1)).alias(name))
    )


def category_comparison(transactions: DataFrame) -> DataFrame:
    approved_amount = F.when(is_approved(), F.col("amount"))
    per_category = transactions.groupBy("merchant_category").agg(
        F.count(F.lit(1)).alias("transaction_count"),
        *(
            F.sum(F.when(F.col("status") == s, 1).otherwise(0)).alias(f"{s}_count")
            for s in STATUSES
        ),
        F.sum(approved_amount).alias("total_amount"),
        F.avg(approved_amount).alias("avg_amount"),
        F.max(approved_amount).alias("max_amount"),
        F.sum(F.when(is_approved(), F.col("commission_amount"))).alias("total_commission"),
        F.avg("risk_level").alias("avg_risk_level"),
        *(
            ratio(
                F.sum(F.when(F.col("payment_method") == m, 1).otherwise(0)), F.count(F.lit(1))
            ).alias(f"share_{m}")
            for m in PAYMENT_METHODS
        ),
    )
    medians = (
        transactions.where(is_approved())
        .groupBy("merchant_category")
        .agg(F.median("amount").alias("median_amount"))
    )
    per_category = (
        per_category.join(medians, "merchant_category", "left")
        .join(_distinct_count(transactions, "customer_id", "unique_customers"), "merchant_category")
        .join(_distinct_count(transactions, "merchant_id", "unique_merchants"), "merchant_category")
    )
    everything = Window.partitionBy(F.lit(1))
    return (
        per_category.fillna(0, subset=["total_amount", "total_commission"])
        .withColumn("approval_rate", ratio(F.col("approved_count"), F.col("transaction_count")))
        .withColumn("decline_rate", ratio(F.col("declined_count"), F.col("transaction_count")))
        .withColumn(
            "commission_ratio",
            ratio(F.col("total_commission"), F.col("total_amount")),
        )
        .withColumn(
            "avg_commission",
            ratio(F.col("total_commission"), F.col("approved_count")),
        )
        .withColumn(
            "transactions_per_customer",
            ratio(F.col("transaction_count"), F.col("unique_customers")),
        )
        .withColumn(
            "share_of_transactions",
            ratio(F.col("transaction_count"), F.sum("transaction_count").over(everything)),
        )
        .withColumn(
            "share_of_amount", ratio(F.col("total_amount"), F.sum("total_amount").over(everything))
        )
        .withColumn(
            "share_of_commission",
            ratio(F.col("total_commission"), F.sum("total_commission").over(everything)),
        )
        .withColumn(
            "rank_by_amount",
            F.row_number().over(Window.orderBy(F.col("total_amount").desc(), "merchant_category")),
        )
        .orderBy("rank_by_amount")
    )
