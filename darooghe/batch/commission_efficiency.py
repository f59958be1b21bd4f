"""Commission efficiency by merchant category (approved transactions: only they collect commission).

commission_ratio = total_commission / total_amount: what Darooghe keeps per rial paid.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import approved, ratio

COLLECTION = mc.COMMISSION_BY_CATEGORY
KEY = "merchant_category"


def commission_by_category(transactions: DataFrame) -> DataFrame:
    """One row per merchant category: transaction_count, total_amount, total_commission,
    avg_commission (per transaction), commission_ratio."""
    return (
        approved(transactions)
        .groupBy("merchant_category")
        .agg(
            F.count(F.lit(1)).alias("transaction_count"),
            F.sum("amount").alias("total_amount"),
            F.sum("commission_amount").alias("total_commission"),
        )
        .withColumn("avg_commission", ratio(F.col("total_commission"), F.col("transaction_count")))
        .withColumn("commission_ratio", ratio(F.col("total_commission"), F.col("total_amount")))
        .orderBy("merchant_category")
    )
