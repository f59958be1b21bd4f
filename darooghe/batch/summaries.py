"""Long-term summaries computed by MongoDB aggregation pipelines on `transactions_daily`.

Within FerretDB 1.x (our local MongoDB): stages $match, $group, $sort, $project only; `$sum` is
the only accumulator used (no $avg/$min/$max/$push); no date operators (the period fields are
stored by darooghe.batch.daily_activity). FerretDB 1.24 also computes only the FIRST accumulator
of a $group stage correctly (the others come back 0; measured again on its PostgreSQL backend: the
accumulators share one iterator over the group, which the first exhausts), so every figure is its
own pipeline with one `$sum`, and the figures are joined, rolled up and divided in Python. Each summary replaces its collection
(darooghe.mongo_write), with deterministic `_id`s.

- summary_by_merchant: `_id` = merchant_id; volume, approvals, amount, commission, active days,
  approval_rate, avg_amount, commission_ratio.
- summary_by_segment: `_id` = segment; the same figures per customer segment.
- summary_by_period: `_id` = "day|2026-03-23", "week|2026-W12", "month|2026-03"; period, period_key.
- commission_by_category_over_time: `_id` = "<category>|<local date>"; commission, amount, ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.batch.daily_activity import COLLECTION as DAILY_COLLECTION
from darooghe.mongo_write import WriteResult, replace_collection

BY_MERCHANT = mc.SUMMARY_BY_MERCHANT
BY_SEGMENT = mc.SUMMARY_BY_SEGMENT
BY_PERIOD = mc.SUMMARY_BY_PERIOD
CATEGORY_OVER_TIME = mc.COMMISSION_BY_CATEGORY_OVER_TIME
SUMMARY_COLLECTIONS = (BY_MERCHANT, BY_SEGMENT, BY_PERIOD, CATEGORY_OVER_TIME)

#: output figure -> field of transactions_daily summed
FIGURES = {
    "transaction_count": "transaction_count",
    "approved_count": "approved_count",
    "declined_count": "declined_count",
    "approved_amount": "approved_amount",
    "commission": "commission",
}
PERIODS = {"day": "local_date", "week": "week", "month": "month"}


def group_sums(
    db: Database,
    collection: str,
    keys: Mapping[str, str],
    sums: Mapping[str, str | int],
    match: Mapping | None = None,
) -> dict[tuple, dict]:
    """Group `collection` by `keys` ({name: field}) and sum each figure of `sums` ({name: field
    or 1}), one single-accumulator pipeline per figure. Returns {key tuple: {name: value}}."""
    group_id = {name: f"${field}" for name, field in keys.items()}
    out: dict[tuple, dict] = {}
    for name, value in sums.items():
        pipeline: list[dict] = [{"$match": dict(match)}] if match else []
        accumulator = value if isinstance(value, int) else f"${value}"
        pipeline.append({"$group": {"_id": group_id, name: {"$sum": accumulator}}})
        for row in db[collection].aggregate(pipeline):
            key = tuple(row["_id"].get(k) for k in keys)
            out.setdefault(key, {k: v for k, v in zip(keys, key)})[name] = row[name]
    for figures in out.values():
        for name in sums:
            figures.setdefault(name, 0)
    return out


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def _derived(doc: dict) -> dict:
    doc["approval_rate"] = _ratio(doc["approved_count"], doc["transaction_count"])
    doc["avg_amount"] = _ratio(doc["approved_amount"], doc["approved_count"])
    doc["commission_ratio"] = _ratio(doc["commission"], doc["approved_amount"])
    return doc


def summary_by_merchant(db: Database, source: str = DAILY_COLLECTION) -> list[dict]:
    keys = {"merchant_id": "merchant_id", "merchant_category": "merchant_category"}
    groups = group_sums(db, source, keys, {**FIGURES, "active_days": "merchant_day_first"})
    return [_derived({"_id": figures["merchant_id"], **figures}) for _, figures in sorted(groups.items())]


def summary_by_segment(db: Database, source: str = DAILY_COLLECTION) -> list[dict]:
    figures = {**FIGURES, "merchants": "segment_merchant_first"}
    groups = group_sums(db, source, {"segment": "segment"}, figures)
    return [_derived({"_id": f["segment"], **f}) for _, f in sorted(groups.items())]


def summary_by_period(db: Database, source: str = DAILY_COLLECTION) -> list[dict]:
    """Days from MongoDB (week and month ride along in the group key, being functions of the day);
    weeks and months are exact roll-ups of the days' sums: 5 pipelines instead of 15."""
    keys = {field: field for field in PERIODS.values()}
    days = list(group_sums(db, source, keys, FIGURES).values())
    docs = []
    for period, field in PERIODS.items():
        totals: dict[str, dict] = {}
        for day in days:
            acc = totals.setdefault(day[field], {f: 0 for f in FIGURES})
            for f in FIGURES:
                acc[f] += day[f]
        for key, figures in sorted(totals.items()):
            docs.append(
                _derived({"_id": f"{period}|{key}", "period": period, "period_key": key, **figures})
            )
    return docs


def commission_by_category_over_time(db: Database, source: str = DAILY_COLLECTION) -> list[dict]:
    keys = {"merchant_category": "merchant_category", "local_date": "local_date"}
    sums = {
        "approved_count": "approved_count",
        "approved_amount": "approved_amount",
        "commission": "commission",
    }
    docs = []
    for (category, day), figures in sorted(group_sums(db, source, keys, sums).items()):
        docs.append(
            {
                "_id": f"{category}|{day}",
                **figures,
                "commission_ratio": _ratio(figures["commission"], figures["approved_amount"]),
                "avg_commission": _ratio(figures["commission"], figures["approved_count"]),
            }
        )
    return docs


@dataclass(frozen=True)
class SummaryResult:
    collection: str
    documents: int
    write: WriteResult


BUILDERS = {
    BY_MERCHANT: summary_by_merchant,
    BY_SEGMENT: summary_by_segment,
    BY_PERIOD: summary_by_period,
    CATEGORY_OVER_TIME: commission_by_category_over_time,
}


def build_summaries(db: Database, source: str = DAILY_COLLECTION) -> dict[str, SummaryResult]:
    """Run every summary's pipelines and replace its collection.

    Every pipeline groups into few groups (at most category x day): FerretDB's `$group` costs
    documents x groups (daily_activity's module doc), and the distinct counts are sums of the
    fact's 0/1 markers.
    """
    results = {}
    for name, build in BUILDERS.items():
        docs = build(db, source)
        results[name] = SummaryResult(name, len(docs), replace_collection(db, name, docs))
    return results
