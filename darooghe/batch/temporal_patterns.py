"""Temporal patterns in Tehran local time (see darooghe.batch.columns for the time rules).

Volume (transaction_count) counts every valid transaction; spending (total_amount) counts approved
transactions only; approved_count is given beside both.

- `hour_weekday_profile`: the full 7 x 24 grid of (day_of_week, hour), zeros included, so a
  heatmap has every cell.
- `hourly_profile`: the 24 local hours with their share of the volume; the PEAK_HOURS busiest
  hours are the peak (ties: the earlier hour), ranked 1..PEAK_HOURS.
- `day_parts_by_category`: volume and spending per (merchant category, part of day), with the
  part's share of the category's volume.
- `spending_trend`: per local day and per ISO week (Monday start, "2026-W12"), with growth against
  the previous calendar period: growth = total_amount / previous total_amount - 1, null when that
  period is absent or spent nothing. The first and last periods of a history are usually partial,
  so their growth says more about the window than about customers.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import (
    DAY_NAMES,
    PARTS_OF_DAY,
    is_approved,
    iso_week_label,
    local_midnight_utc,
    ratio,
    week_start,
    with_local_time,
)

TEMPORAL_COLLECTION = mc.TEMPORAL_PATTERNS
HOURLY_COLLECTION = mc.HOURLY_PROFILE
DAY_PARTS_COLLECTION = mc.CATEGORY_DAY_PARTS
TREND_COLLECTION = mc.SPENDING_TREND
PEAK_HOURS = 3


def _measures() -> list[Column]:
    return [
        F.count(F.lit(1)).alias("transaction_count"),
        F.sum(F.when(is_approved(), 1).otherwise(0)).alias("approved_count"),
        F.sum(F.when(is_approved(), F.col("amount")).otherwise(0)).alias("total_amount"),
    ]


def _zero_fill(frame: DataFrame) -> DataFrame:
    return frame.fillna(0, subset=["transaction_count", "approved_count", "total_amount"])


def hour_weekday_profile(transactions: DataFrame) -> DataFrame:
    """day_of_week (0=Monday), day_name, hour, transaction_count, approved_count, total_amount."""
    spark: SparkSession = transactions.sparkSession
    grid = spark.createDataFrame(
        [(d, name, h) for d, name in enumerate(DAY_NAMES) for h in range(24)],
        "day_of_week int, day_name string, hour int",
    )
    counts = (
        with_local_time(transactions)
        .groupBy(
            F.col("day_of_week").cast("int").alias("day_of_week"), F.col("local_hour").alias("hour")
        )
        .agg(*_measures())
    )
    return _zero_fill(grid.join(counts, ["day_of_week", "hour"], "left")).orderBy(
        "day_of_week", "hour"
    )


def hourly_profile(transactions: DataFrame) -> DataFrame:
    """hour, transaction_count, approved_count, total_amount, share, peak_rank (null off-peak), is_peak."""
    spark: SparkSession = transactions.sparkSession
    grid = spark.createDataFrame([(h,) for h in range(24)], "hour int")
    counts = (
        with_local_time(transactions).groupBy(F.col("local_hour").alias("hour")).agg(*_measures())
    )
    hours = _zero_fill(grid.join(counts, "hour", "left"))
    everything = Window.partitionBy(F.lit(1))
    busiest = Window.orderBy(F.col("transaction_count").desc(), F.col("hour"))
    rank = F.row_number().over(busiest)
    peak = (rank <= PEAK_HOURS) & (F.col("transaction_count") > 0)
    return (
        hours.withColumn(
            "share", ratio(F.col("transaction_count"), F.sum("transaction_count").over(everything))
        )
        .withColumn("peak_rank", F.when(peak, rank))
        .withColumn("is_peak", F.coalesce(peak, F.lit(False)))
        .orderBy("hour")
    )


def day_parts_by_category(transactions: DataFrame) -> DataFrame:
    """merchant_category, part_of_day, transaction_count, approved_count, total_amount, share."""
    spark: SparkSession = transactions.sparkSession
    categories = transactions.select("merchant_category").distinct()
    parts = spark.createDataFrame(
        [(name, i) for i, (name, _, _) in enumerate(PARTS_OF_DAY)],
        "part_of_day string, part_order int",
    )
    counts = (
        with_local_time(transactions).groupBy("merchant_category", "part_of_day").agg(*_measures())
    )
    per_category = Window.partitionBy("merchant_category")
    return (
        _zero_fill(
            categories.crossJoin(parts).join(counts, ["merchant_category", "part_of_day"], "left")
        )
        .withColumn(
            "share",
            ratio(F.col("transaction_count"), F.sum("transaction_count").over(per_category)),
        )
        .orderBy("merchant_category", "part_order")
    )


def _trend(
    local: DataFrame, period: str, start: Column, label: Column, step_days: int
) -> DataFrame:
    per_period = local.groupBy(start.alias("period_date"), label.alias("period_key")).agg(
        *_measures()
    )
    ordered = Window.orderBy("period_date")
    previous_date = F.lag("period_date").over(ordered)
    previous_total = F.lag("total_amount").over(ordered)
    previous_count = F.lag("transaction_count").over(ordered)
    adjacent = F.datediff(F.col("period_date"), previous_date) == step_days
    return (
        per_period.withColumn("adjacent", adjacent)
        .withColumn("previous_total", previous_total)
        .withColumn("previous_count", previous_count)
        .select(
            F.lit(period).alias("period"),
            "period_key",
            F.col("period_date").cast("timestamp").alias("period_start"),
            local_midnight_utc(F.col("period_date")).alias("period_start_utc"),
            "transaction_count",
            "approved_count",
            "total_amount",
            F.when(
                F.col("adjacent") & (F.col("previous_total") > 0),
                ratio(F.col("total_amount"), F.col("previous_total")) - 1,
            ).alias("growth"),
            F.when(
                F.col("adjacent") & (F.col("previous_count") > 0),
                ratio(F.col("transaction_count"), F.col("previous_count")) - 1,
            ).alias("count_growth"),
        )
    )


def spending_trend(transactions: DataFrame) -> DataFrame:
    """Daily and weekly rows: period ("day"|"week"), period_key ("2026-03-23" | "2026-W12"),
    period_start (the local date at 00:00, as a naive date-time), period_start_utc (the instant
    the local period begins), transaction_count, approved_count, total_amount, growth, count_growth."""
    local = with_local_time(transactions)
    daily = _trend(
        local, "day", F.col("local_date"), F.date_format(F.col("local_date"), "yyyy-MM-dd"), 1
    )
    weekly = _trend(
        local, "week", week_start(F.col("local_date")), iso_week_label(F.col("local_date")), 7
    )
    return daily.unionByName(weekly).orderBy("period", "period_start")


def trend_id(doc: dict) -> str:
    return f"{doc['period']}|{doc['period_key']}"


def hour_weekday_id(doc: dict) -> str:
    return f"{doc['day_of_week']}-{doc['hour']}"


def day_part_id(doc: dict) -> str:
    return f"{doc['merchant_category']}|{doc['part_of_day']}"
