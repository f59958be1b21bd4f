"""Customer segments from recency, frequency and monetary value (RFM) of approved payments.

- reference time: the newest event time in the data (not the wall clock), so the same history
  always gives the same segments, whether it is analysed now or replayed later;
- recency_days: days from the customer's last approved payment to the reference time (fractional);
  frequency: approved payments; monetary: their total amount (IRR);
- scores 1..5 by percentile rank among the customers: score = min(5, 1 + floor(5 * percent_rank)),
  ranked so that 5 is best (most recent, most frequent, highest spend). percent_rank gives equal
  values equal scores, so the scores do not depend on row order;
- the readable segment is the first rule of SEGMENT_RULES whose score ranges hold the customer's
  (r, f, m); "Need Attention" takes whoever is left (middle recency, middle frequency).

Customers with no approved payment have no RFM values and no segment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import approved, ratio

SEGMENTS_COLLECTION = mc.CUSTOMER_SEGMENTS
SUMMARY_COLLECTION = mc.SEGMENT_SUMMARY
MS_PER_DAY = 86_400_000
SCORES = 5


@dataclass(frozen=True)
class SegmentRule:
    """A segment and the score ranges (inclusive) it takes; a score not named may be anything."""

    name: str
    r: tuple[int, int] = (1, SCORES)
    f: tuple[int, int] = (1, SCORES)
    m: tuple[int, int] = (1, SCORES)

    def matches(self, r: int, f: int, m: int) -> bool:
        return all(lo <= v <= hi for v, (lo, hi) in ((r, self.r), (f, self.f), (m, self.m)))

    def condition(self, r: Column, f: Column, m: Column) -> Column:
        cond = F.lit(True)
        for col, (lo, hi) in ((r, self.r), (f, self.f), (m, self.m)):
            if (lo, hi) != (1, SCORES):
                cond = cond & col.between(lo, hi)
        return cond


#: Checked in order, the first match names the customer; the last matches everyone.
SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("Champions", r=(4, 5), f=(4, 5), m=(4, 5)),
    SegmentRule("Loyal Customers", r=(3, 5), f=(4, 5)),
    SegmentRule("Big Spenders", r=(3, 5), m=(4, 5)),
    SegmentRule("New Customers", r=(4, 5), f=(1, 1)),
    SegmentRule("Potential Loyalists", r=(4, 5), f=(2, 3)),
    SegmentRule("At Risk", r=(1, 2), f=(3, 5)),
    SegmentRule("Lost", r=(1, 1), f=(1, 2)),
    SegmentRule("Hibernating", r=(2, 2), f=(1, 2)),
    SegmentRule("Need Attention"),
)
SEGMENT_NAMES = tuple(rule.name for rule in SEGMENT_RULES)


def segment_of(r: int, f: int, m: int) -> str:
    """The readable segment of one (r, f, m) score triple (the same rules as `segment_column`)."""
    return next(rule.name for rule in SEGMENT_RULES if rule.matches(r, f, m))


def score(value: Column, ascending_is_better: bool) -> Column:
    """1..SCORES by percent rank among all customers; SCORES is best."""
    order = value.asc() if ascending_is_better else value.desc()
    rank = F.percent_rank().over(Window.orderBy(order))
    return F.least(F.lit(SCORES), F.lit(1) + F.floor(F.lit(SCORES) * rank)).cast("int")


def segment_column(r: Column, f: Column, m: Column) -> Column:
    result = None
    for rule in SEGMENT_RULES:
        cond = rule.condition(r, f, m)
        result = F.when(cond, rule.name) if result is None else result.when(cond, rule.name)
    return result


def rfm(transactions: DataFrame, reference_time: dt.datetime | None = None) -> DataFrame:
    """customer_id, recency_days, frequency, monetary, r/f/m scores, segment, last_payment,
    reference_time (default: the newest event time of `transactions`)."""
    if reference_time is None:
        newest = transactions.agg(F.max("event_time").alias("reference_time"))
    else:
        newest = transactions.sparkSession.range(1).select(
            F.lit(reference_time).cast("timestamp").alias("reference_time")
        )
    per_customer = (
        approved(transactions)
        .groupBy("customer_id")
        .agg(
            F.max("event_time").alias("last_payment"),
            F.count(F.lit(1)).alias("frequency"),
            F.sum("amount").alias("monetary"),
        )
        .crossJoin(newest)
        .withColumn(
            "recency_days",
            (F.unix_millis("reference_time") - F.unix_millis("last_payment")) / F.lit(MS_PER_DAY),
        )
    )
    scored = (
        per_customer.withColumn("r_score", score(F.col("recency_days"), ascending_is_better=False))
        .withColumn("f_score", score(F.col("frequency"), ascending_is_better=True))
        .withColumn("m_score", score(F.col("monetary"), ascending_is_better=True))
    )
    return scored.withColumn(
        "segment", segment_column(F.col("r_score"), F.col("f_score"), F.col("m_score"))
    ).select(
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "segment",
        "last_payment",
        "reference_time",
    )


def segment_summary(segments: DataFrame) -> DataFrame:
    """segment, customers, avg_recency_days, avg_frequency, avg_monetary, share of customers."""
    return (
        segments.groupBy("segment")
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.avg("recency_days").alias("avg_recency_days"),
            F.avg("frequency").alias("avg_frequency"),
            F.avg("monetary").alias("avg_monetary"),
            F.sum("monetary").alias("total_monetary"),
        )
        .withColumn(
            "share",
            ratio(F.col("customers"), F.sum("customers").over(Window.partitionBy(F.lit(1)))),
        )
        .orderBy(F.col("customers").desc(), "segment")
    )
