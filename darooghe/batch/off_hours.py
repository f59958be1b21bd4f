"""Payments made outside the merchant's business hours (darooghe.batch.business_hours).

Only in-person payments (pos, nfc: the methods that carry no device) are judged: online and mobile
payments reach a merchant's web shop or app at any hour, so their time says nothing about the shop.
A payment is off-hours when its Tehran local hour is not in [open_hour, close_hour) of its
merchant's reference record; a merchant without one is not judged (`off_hours` null).

- `off_hours_transactions`: one row per off-hours payment (any status), with the hours applied;
- `off_hours_by_merchant`: per merchant, in-person payments, off-hours ones and their share (null
  for a merchant without a reference record, whose `hours_source` says so).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.business_hours import (
    IN_PERSON_METHODS,
    NO_REFERENCE,
    REFERENCE,
    register_frame,
)
from darooghe.batch.columns import is_approved, ratio, with_local_time

TRANSACTIONS_COLLECTION = mc.OFF_HOURS_TRANSACTIONS
MERCHANTS_COLLECTION = mc.OFF_HOURS_MERCHANTS


def judged_payments(transactions: DataFrame, merchants: list[dict]) -> DataFrame:
    """In-person payments with local hour, the merchant's hours and an `off_hours` flag (null:
    the merchant has no reference record, so the payment is not judged)."""
    known = register_frame(transactions.sparkSession, merchants).drop("reference_category")
    in_person = with_local_time(
        transactions.where(F.col("payment_method").isin(*IN_PERSON_METHODS))
    )
    has_hours = F.col("open_hour").isNotNull()
    return (
        in_person.join(F.broadcast(known), "merchant_id", "left")
        .withColumn("hours_source", F.when(has_hours, REFERENCE).otherwise(NO_REFERENCE))
        .withColumn(
            "off_hours",
            F.when(
                has_hours,
                ~(
                    (F.col("local_hour") >= F.col("open_hour"))
                    & (F.col("local_hour") < F.col("close_hour"))
                ),
            ),
        )
    )


def off_hours_transactions(transactions: DataFrame, merchants: list[dict]) -> DataFrame:
    return (
        judged_payments(transactions, merchants)
        .where(F.col("off_hours"))
        .select(
            "transaction_id",
            "merchant_id",
            "merchant_category",
            "customer_id",
            "payment_method",
            "status",
            "amount",
            "event_time",
            F.date_format("local_time", "yyyy-MM-dd'T'HH:mm:ss.SSS").alias("local_time"),
            "local_hour",
            "open_hour",
            "close_hour",
            "hours_source",
        )
        .orderBy("event_time", "transaction_id")
    )


def off_hours_by_merchant(transactions: DataFrame, merchants: list[dict]) -> DataFrame:
    judged = judged_payments(transactions, merchants)
    return (
        judged.groupBy(
            "merchant_id", "merchant_category", "open_hour", "close_hour", "hours_source"
        )
        .agg(
            F.count(F.lit(1)).alias("in_person_count"),
            F.sum(F.when(F.col("off_hours"), 1).otherwise(0)).alias("off_hours_count"),
            F.sum(F.when(F.col("off_hours") & is_approved(), F.col("amount")).otherwise(0)).alias(
                "off_hours_amount"
            ),
            F.max(F.when(F.col("off_hours"), F.col("event_time"))).alias("last_off_hours_at"),
        )
        .withColumn("off_hours_share", ratio(F.col("off_hours_count"), F.col("in_person_count")))
        .withColumns(
            {  # not judged: no figures rather than zeros that read as "always open"
                name: F.when(F.col("hours_source") == REFERENCE, F.col(name))
                for name in ("off_hours_count", "off_hours_amount", "off_hours_share")
            }
        )
        .orderBy(F.col("off_hours_count").desc_nulls_last(), "merchant_id")
    )
