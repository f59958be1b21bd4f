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

from darooghe.batch.daily_activity import COLLECTION as DAILY_COLLECTION
from darooghe.mongo_write import WriteResult, replace_collection

BY_MERCHANT = "summary_by_merchant"
BY_SEGMENT = "summary_by_segment"
BY_PERIOD = "summary_by_period"
CATEGORY_OVER_TIME = "commission_by_category_over_time"
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


def distinct_counts(
    db: Database, collection: str, keys: Mapping[str, str], of: str
) -> dict[tuple, int]:
    """For each group of `keys`, how many distinct values of field `of` it has (two $group stages)."""
    inner = {**{k: f"${f}" for k, f in keys.items()}, "_of": f"${of}"}
    pipeline = [
        {"$group": {"_id": inner}},
        {"$group": {"_id": {k: f"$_id.{k}" for k in keys}, "n": {"$sum": 1}}},
    ]
    return {
        tuple(row["_id"].get(k) for k in keys): row["n"]
        for row in db[collection].aggregate(pipeline)
    }


def _ratio(numerator, denominator):
    return numerator / denominator if denominator else None


def _derived(doc: dict) -> dict:
    doc["approval_rate"] = _ratio(doc["approved_count"], doc["transaction_count"])
    doc["avg_amount"] = _ratio(doc["approved_amount"], doc["approved_count"])
    doc["commission_ratio"] = _ratio(doc["commission"], doc["approved_amount"])
    return doc


#: the finest grouping every summary but the segments' rolls up from (sums of sums are exact)
DAY_KEYS = {
    "merchant_id": "merchant_id",
    "merchant_category": "merchant_category",
    "local_date": "local_date",
    "week": "week",
    "month": "month",
}


def _roll_up(rows: list[dict], keys: tuple[str, ...], figures) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        acc = out.setdefault(key, {**dict(zip(keys, key)), **{f: 0 for f in figures}})
        for f in figures:
            acc[f] += row[f]
    return out


def summary_by_merchant(per_day: list[dict]) -> list[dict]:
    groups = _roll_up(per_day, ("merchant_id", "merchant_category"), FIGURES)
    days = _roll_up([{**r, "active_days": 1} for r in per_day], ("merchant_id",), ("active_days",))
    return [
        _derived(
            {"_id": figures["merchant_id"], **figures, "active_days": days[key[:1]]["active_days"]}
        )
        for key, figures in sorted(groups.items())
    ]


def summary_by_segment(per_segment: dict[tuple, dict], merchants: dict[tuple, int]) -> list[dict]:
    return [
        _derived({"_id": figures["segment"], **figures, "merchants": merchants.get(key, 0)})
        for key, figures in sorted(per_segment.items())
    ]


def summary_by_period(per_day: list[dict]) -> list[dict]:
    docs = []
    for period, field in PERIODS.items():
        for (key,), figures in sorted(_roll_up(per_day, (field,), FIGURES).items()):
            sums = {f: figures[f] for f in FIGURES}
            docs.append(_derived({"_id": f"{period}|{key}", "period": period, "period_key": key, **sums}))
    return docs


def commission_by_category_over_time(per_day: list[dict]) -> list[dict]:
    sums = ("approved_count", "approved_amount", "commission")
    docs = []
    by_day = _roll_up(per_day, ("merchant_category", "local_date"), sums)
    for (category, day), figures in sorted(by_day.items()):
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


def build_summaries(db: Database, source: str = DAILY_COLLECTION) -> dict[str, SummaryResult]:
    """Run the aggregation pipelines once and replace every summary's collection.

    Three groupings in MongoDB, one pipeline per figure (see the module doc): by merchant and day
    (every summary but the segments' is a roll-up of it), by segment, and the distinct merchants
    per segment: 11 pipelines. One grouping per summary took 30 (68.6 s on FerretDB/PostgreSQL for
    a 35-day fact of 12,250 documents, on a loaded machine: each pipeline decodes every document).
    """
    per_day = list(group_sums(db, source, DAY_KEYS, FIGURES).values())
    per_segment = group_sums(db, source, {"segment": "segment"}, FIGURES)
    merchants = distinct_counts(db, source, {"segment": "segment"}, "merchant_id")
    built = {
        BY_MERCHANT: summary_by_merchant(per_day),
        BY_SEGMENT: summary_by_segment(per_segment, merchants),
        BY_PERIOD: summary_by_period(per_day),
        CATEGORY_OVER_TIME: commission_by_category_over_time(per_day),
    }
    return {
        name: SummaryResult(name, len(docs), replace_collection(db, name, docs))
        for name, docs in built.items()
    }
