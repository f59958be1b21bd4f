"""The long-term daily fact the MongoDB aggregation summaries run on.

The detailed `transactions` collection keeps only 24 hours; long-term summaries (by merchant,
customer segment, period, category over time) need the whole history. Spark condenses the lake into
one document per (Tehran local day, merchant, customer segment) — a few thousand documents for a
week, instead of millions of transactions — carrying the derived period fields the aggregation
pipelines group on (`local_date`, `week` "2026-W12", `month` "2026-03"), since FerretDB 1.x has
no date operators. The summaries are then computed by MongoDB (darooghe.batch.summaries).

`segment` is the customer's current RFM segment (customers without an approved payment:
UNSEGMENTED). Volume counts cover every valid transaction; amounts and commission approved ones.

Two 0/1 markers turn the summaries' distinct counts into sums: `merchant_day_first` is 1 on one
document of each (day, merchant), so a merchant's active days are the sum of it; and
`segment_merchant_first` is 1 on one document of each (segment, merchant), so a segment's merchants
are the sum of it. FerretDB 1.24 groups by scanning its list of groups for every document
(measured: 12,250 documents into the 1,750 (merchant, day) groups a distinct count needs took 17 s;
into 7 groups, 1.2 s), so a sum over few groups is what it does fast.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import is_approved, iso_week_label, with_local_time

COLLECTION = mc.TRANSACTIONS_DAILY
UNSEGMENTED = "No approved payment"


def daily_activity(transactions: DataFrame, segments: DataFrame) -> DataFrame:
    local = with_local_time(transactions).join(
        segments.select("customer_id", "segment"), "customer_id", "left"
    )
    return (
        local.withColumn("segment", F.coalesce(F.col("segment"), F.lit(UNSEGMENTED)))
        .groupBy("local_date", "merchant_id", "merchant_category", "segment")
        .agg(
            F.count(F.lit(1)).alias("transaction_count"),
            F.sum(F.when(is_approved(), 1).otherwise(0)).alias("approved_count"),
            F.sum(F.when(F.col("status") == "declined", 1).otherwise(0)).alias("declined_count"),
            F.sum(F.when(is_approved(), F.col("amount")).otherwise(0)).alias("approved_amount"),
            F.sum(F.when(is_approved(), F.col("commission_amount")).otherwise(0)).alias(
                "commission"
            ),
        )
        .select(
            F.date_format("local_date", "yyyy-MM-dd").alias("local_date"),
            iso_week_label(F.col("local_date")).alias("week"),
            F.date_format("local_date", "yyyy-MM").alias("month"),
            "merchant_id",
            "merchant_category",
            "segment",
            "transaction_count",
            "approved_count",
            "declined_count",
            "approved_amount",
            "commission",
        )
        .withColumn("merchant_day_first", _first_of("local_date", "merchant_id", by="segment"))
        .withColumn("segment_merchant_first", _first_of("segment", "merchant_id", by="local_date"))
        .orderBy("local_date", "merchant_id", "segment")
    )


def _first_of(*group: str, by: str) -> F.Column:
    """1 on the first row of each `group` (ordered by `by`), else 0."""
    return (F.row_number().over(Window.partitionBy(*group).orderBy(by)) == 1).cast("int")


def daily_id(doc: dict) -> str:
    return f"{doc['local_date']}|{doc['merchant_id']}|{doc['segment']}"
