"""Payments made outside the merchant's business hours (darooghe.batch.business_hours).

Only in-person payments (pos, nfc: the methods that carry no device) are judged: online and mobile
payments reach a merchant's web shop or app at any hour, so their time says nothing about the shop.
A payment is off-hours when its Tehran local hour is not in [open_hour, close_hour).

- `off_hours_transactions`: one row per off-hours payment (any status), with the hours applied;
- `off_hours_by_merchant`: per merchant, in-person payments, off-hours ones and their share.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from darooghe.batch.business_hours import (
    CATEGORY_DEFAULT,
    GENERATOR,
    category_hours_frame,
    merchant_hours_frame,
)
from darooghe.batch.columns import is_approved, ratio, with_local_time
from darooghe.schema import DEVICE_PAYMENT_METHODS, PAYMENT_METHODS

TRANSACTIONS_COLLECTION = "off_hours_transactions"
MERCHANTS_COLLECTION = "off_hours_merchants"
IN_PERSON_METHODS = tuple(m for m in PAYMENT_METHODS if m not in DEVICE_PAYMENT_METHODS)


def judged_payments(transactions: DataFrame, merchants: list[dict]) -> DataFrame:
    """In-person payments with local hour, the merchant's hours and an `off_hours` flag."""
    spark = transactions.sparkSession
    known = merchant_hours_frame(spark, merchants)
    defaults = category_hours_frame(spark)
    in_person = with_local_time(
        transactions.where(F.col("payment_method").isin(*IN_PERSON_METHODS))
    )
    joined = in_person.join(F.broadcast(known), "merchant_id", "left").join(
        F.broadcast(defaults), "merchant_category", "left"
    )
    from_register = F.col("open_hour").isNotNull()
    open_hour = F.coalesce(F.col("open_hour"), F.col("default_open_hour"))
    close_hour = F.coalesce(F.col("close_hour"), F.col("default_close_hour"))
    return (
        joined.withColumn(
            "hours_source", F.when(from_register, GENERATOR).otherwise(CATEGORY_DEFAULT)
        )
        .withColumn("open_hour", open_hour)
        .withColumn("close_hour", close_hour)
        .withColumn(
            "off_hours",
            ~(
                (F.col("local_hour") >= F.col("open_hour"))
                & (F.col("local_hour") < F.col("close_hour"))
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
        .orderBy(F.col("off_hours_count").desc(), "merchant_id")
    )
