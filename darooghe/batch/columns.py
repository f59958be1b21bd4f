"""Derived columns and scopes every batch analysis shares, defined once.

- Scope: commission and spending figures count approved transactions only (a declined or pending
  payment collects no commission and spends nothing); volume figures count every valid transaction.
- Local time: Darooghe's customers live in Iran, so hours, weekdays, days and weeks are read in
  Asia/Tehran (UTC+03:30, no daylight saving since 2022). Spark's session time zone is UTC
  (darooghe.spark), so `from_utc_timestamp` gives the Tehran wall-clock time as a timestamp whose
  fields (hour, date, weekday) are the local ones.
- Parts of the day, as a payments team reads them: morning 05-12, afternoon 12-17, evening 17-21,
  night 21-05 (local hours, start included).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

LOCAL_TIME_ZONE = "Asia/Tehran"
APPROVED = "approved"

#: 0 = Monday ... 6 = Sunday (Spark's `weekday`); the Iranian weekend is Friday (4).
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: (name, first local hour, last local hour + 1); night wraps around midnight.
PARTS_OF_DAY = (
    ("morning", 5, 12),
    ("afternoon", 12, 17),
    ("evening", 17, 21),
    ("night", 21, 29),
)


def part_of_day_name(hour: int) -> str:
    """The part of the day of a local hour (0-23), the Python twin of `part_of_day`."""
    if not (isinstance(hour, int) and 0 <= hour <= 23):
        raise ValueError(f"hour {hour!r} is not a local hour 0-23")
    for name, start, end in PARTS_OF_DAY:
        if start <= hour < end or start <= hour + 24 < end:
            return name
    raise AssertionError(f"PARTS_OF_DAY does not cover hour {hour}")


def part_of_day(hour: Column) -> Column:
    """Column: the part of the day of a local hour Column."""
    result = None
    for name, start, end in PARTS_OF_DAY:
        cond = (hour >= start) & (hour < end)
        if end > 24:
            cond = (hour >= start) | (hour < end - 24)
        result = F.when(cond, name) if result is None else result.when(cond, name)
    return result


def approved(transactions: DataFrame) -> DataFrame:
    """The transactions that count for commission and spending."""
    return transactions.where(F.col("status") == APPROVED)


def is_approved() -> Column:
    return F.col("status") == APPROVED


def with_local_time(transactions: DataFrame) -> DataFrame:
    """Add Tehran local time columns from `event_time` (UTC):
    local_time, local_date (date), local_hour (0-23), day_of_week (0=Monday), part_of_day."""
    local = F.from_utc_timestamp(F.col("event_time"), LOCAL_TIME_ZONE)
    return (
        transactions.withColumn("local_time", local)
        .withColumn("local_date", F.to_date(F.col("local_time")))
        .withColumn("local_hour", F.hour(F.col("local_time")))
        .withColumn("day_of_week", F.weekday(F.col("local_time")))
        .withColumn("part_of_day", part_of_day(F.col("local_hour")))
    )


def local_midnight_utc(local_date: Column) -> Column:
    """Column: the UTC instant at which a Tehran local date begins."""
    return F.to_utc_timestamp(local_date.cast("timestamp"), LOCAL_TIME_ZONE)


def iso_week_label(local_date: Column) -> Column:
    """Column: the ISO week of a date as "2026-W12" (the ISO year is that of the week's Thursday)."""
    monday = F.date_trunc("week", local_date.cast("timestamp")).cast("date")
    thursday = F.date_add(monday, 3)
    return F.format_string("%d-W%02d", F.year(thursday), F.weekofyear(thursday))


def week_start(local_date: Column) -> Column:
    """Column: the Monday of the ISO week of a date."""
    return F.date_trunc("week", local_date.cast("timestamp")).cast("date")


def ratio(numerator: Column, denominator: Column) -> Column:
    """numerator / denominator as a double, null when the denominator is 0 (Spark's ANSI mode
    would otherwise fail the whole query on an empty group)."""
    return F.try_divide(numerator.cast("double"), denominator.cast("double"))
