"""Merchants with sudden spikes: an hour whose volume jumps far above the merchant's recent baseline.

Per merchant and UTC hour, the volume (every valid transaction) is compared with the baseline of
the BASELINE_HOURS hours before it — hours without a payment count as 0 — by mean and standard
deviation. An hour is a spike when
    transaction_count >= MIN_SPIKE_COUNT and transaction_count >= SPIKE_RATIO x baseline mean,
and the merchant was active at least BASELINE_HOURS before it (a full baseline). The ratio, not a
z-score, decides, because the daily cycle (PEAK_FACTOR up to 5) makes ordinary peaks several
standard deviations high for quiet merchants; z_score is reported beside it.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import is_approved, ratio

COLLECTION = mc.MERCHANT_SPIKES
BASELINE_HOURS = 24
SPIKE_RATIO = 3.0
MIN_SPIKE_COUNT = 5
SECONDS_PER_HOUR = 3600


def hourly_volume(transactions: DataFrame) -> DataFrame:
    """merchant_id, merchant_category, hour_index (hours since the epoch), hour_start, counts."""
    hour_index = F.floor(F.unix_seconds("event_time") / SECONDS_PER_HOUR).cast("long")
    return transactions.groupBy(
        "merchant_id", "merchant_category", hour_index.alias("hour_index")
    ).agg(
        F.count(F.lit(1)).alias("transaction_count"),
        F.sum(F.when(is_approved(), F.col("amount")).otherwise(0)).alias("total_amount"),
    )


def merchant_spikes(transactions: DataFrame) -> DataFrame:
    hourly = hourly_volume(transactions)
    before = (
        Window.partitionBy("merchant_id").orderBy("hour_index").rangeBetween(-BASELINE_HOURS, -1)
    )
    merchant = Window.partitionBy("merchant_id")
    n = float(BASELINE_HOURS)
    with_baseline = (
        hourly.withColumn(
            "baseline_sum", F.coalesce(F.sum("transaction_count").over(before), F.lit(0))
        )
        .withColumn(
            "baseline_sumsq",
            F.coalesce(
                F.sum(F.col("transaction_count") * F.col("transaction_count")).over(before),
                F.lit(0),
            ),
        )
        .withColumn("first_hour", F.min("hour_index").over(merchant))
        .withColumn("baseline_mean", F.col("baseline_sum") / F.lit(n))
        .withColumn(
            "baseline_std",
            F.sqrt(
                F.greatest(
                    F.col("baseline_sumsq") / F.lit(n) - F.pow(F.col("baseline_mean"), 2),
                    F.lit(0.0),
                )
            ),
        )
    )
    spike = (
        (F.col("hour_index") - F.col("first_hour") >= BASELINE_HOURS)
        & (F.col("transaction_count") >= MIN_SPIKE_COUNT)
        & (F.col("transaction_count") >= F.lit(SPIKE_RATIO) * F.col("baseline_mean"))
    )
    return (
        with_baseline.where(spike)
        .select(
            "merchant_id",
            "merchant_category",
            F.timestamp_seconds(F.col("hour_index") * SECONDS_PER_HOUR).alias("hour_start"),
            "transaction_count",
            "total_amount",
            "baseline_mean",
            "baseline_std",
            ratio(F.col("transaction_count"), F.col("baseline_mean")).alias("ratio"),
            ratio(F.col("transaction_count") - F.col("baseline_mean"), F.col("baseline_std")).alias(
                "z_score"
            ),
        )
        .orderBy(F.col("hour_start"), F.col("merchant_id"))
    )


def spike_id(doc: dict) -> str:
    return f"{doc['merchant_id']}|{doc['hour_start'].strftime('%Y-%m-%dT%H:00Z')}"
