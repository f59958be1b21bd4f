"""Asset checks of the batch layer: keys, value ranges, row counts against the lake, freshness.

- `keys_unique_not_null` on every collection: the natural key (one field or several) is present
  on every document and no two documents share it.
- `values_in_range`: ratios and shares within [0, 1], RFM scores within 1..5, the UDF agreeing
  with Spark's own choice on every payment.
- `matches_lake` (one Spark pass over the lake for all of them): the counts and sums each
  collection must reproduce — e.g. commission_by_category's transactions and commission are the
  lake's approved ones, customer_profiles has one document per customer with an approved payment.
- the lake itself: every Kafka record once (unique partition/offset and transaction_id), and its
  newest event not older than a day (a stalled pipeline shows here).
- freshness: each collection's documents were written within a day plus slack (`updated_at`);
  the assets also carry a FreshnessPolicy (daily, hourly for the detailed transactions).
Checks that scan a collection use only $match/$group/$sum (FerretDB 1.x).
"""

import datetime as dt
from collections.abc import Sequence

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch import transactions_store as ts
from darooghe.batch.columns import is_approved
from darooghe_assets import constants as c
from darooghe_assets.assets.lake import lake_frame
from darooghe_assets.resources import MongoResource, SettingsResource

UTC = dt.UTC

#: asset key -> (collection, natural key fields)
NATURAL_KEYS: dict[dg.AssetKey, tuple[str, tuple[str, ...]]] = {
    c.COMMISSION_BY_CATEGORY: (mc.COMMISSION_BY_CATEGORY, ("merchant_category",)),
    c.COMMISSION_MODELS: (mc.COMMISSION_MODELS, ("merchant_category", "structure")),
    c.COMMISSION_RECOMMENDATIONS: (mc.COMMISSION_RECOMMENDATIONS, ("merchant_category",)),
    c.TEMPORAL_PATTERNS: (mc.TEMPORAL_PATTERNS, ("day_of_week", "hour")),
    c.HOURLY_PROFILE: (mc.HOURLY_PROFILE, ("hour",)),
    c.CATEGORY_DAY_PARTS: (mc.CATEGORY_DAY_PARTS, ("merchant_category", "part_of_day")),
    c.SPENDING_TREND: (mc.SPENDING_TREND, ("period", "period_key")),
    c.CUSTOMER_PROFILES: (mc.CUSTOMER_PROFILES, ("customer_id",)),
    c.CUSTOMER_SEGMENTS: (mc.CUSTOMER_SEGMENTS, ("customer_id",)),
    c.CATEGORY_COMPARISON: (mc.CATEGORY_COMPARISON, ("merchant_category",)),
    c.MERCHANTS: (mc.MERCHANTS, ("merchant_id",)),
    c.OFF_HOURS_TRANSACTIONS: (mc.OFF_HOURS_TRANSACTIONS, ("transaction_id",)),
    c.OFF_HOURS_MERCHANTS: (mc.OFF_HOURS_MERCHANTS, ("merchant_id",)),
    c.MERCHANT_SPIKES: (mc.MERCHANT_SPIKES, ("merchant_id", "hour_start")),
    c.TRANSACTIONS_DAILY: (mc.TRANSACTIONS_DAILY, ("local_date", "merchant_id", "segment")),
    c.SUMMARY_BY_MERCHANT: (mc.SUMMARY_BY_MERCHANT, ("merchant_id",)),
    c.SUMMARY_BY_SEGMENT: (mc.SUMMARY_BY_SEGMENT, ("segment",)),
    c.SUMMARY_BY_PERIOD: (mc.SUMMARY_BY_PERIOD, ("period", "period_key")),
    c.COMMISSION_BY_CATEGORY_OVER_TIME: (
        mc.COMMISSION_BY_CATEGORY_OVER_TIME,
        ("merchant_category", "local_date"),
    ),
}

UNIT = (0.0, 1.0)
#: asset key -> {field: (low, high)} (inclusive); null values are not judged
RANGES: dict[dg.AssetKey, dict[str, tuple[float, float]]] = {
    c.COMMISSION_BY_CATEGORY: {"commission_ratio": UNIT},
    c.COMMISSION_MODELS: {"commission_ratio": UNIT},
    c.COMMISSION_RECOMMENDATIONS: {
        "recommended_ratio": UNIT,
        "amount_share_below_500k": UNIT,
        "amount_share_500k_to_1_5m": UNIT,
        "amount_share_above_1_5m": UNIT,
        "udf_agreement": (1.0, 1.0),  # the UDF and the Spark columns choose alike on every payment
        "udf_transactions_worse": (0, 0),
    },
    c.HOURLY_PROFILE: {"share": UNIT, "hour": (0, 23)},
    c.TEMPORAL_PATTERNS: {"day_of_week": (0, 6), "hour": (0, 23)},
    c.CATEGORY_DAY_PARTS: {"share": UNIT},
    c.CUSTOMER_SEGMENTS: {
        "r_score": (1, 5),
        "f_score": (1, 5),
        "m_score": (1, 5),
        "recency_days": (0, 1e9),
    },
    c.CATEGORY_COMPARISON: {
        "approval_rate": UNIT,
        "decline_rate": UNIT,
        "commission_ratio": UNIT,
        "share_of_transactions": UNIT,
        "share_of_amount": UNIT,
        "share_of_commission": UNIT,
        **{f"share_{m}": UNIT for m in ("online", "pos", "mobile", "nfc")},
    },
    c.MERCHANTS: {"open_hour": (0, 23), "close_hour": (1, 24)},
    c.OFF_HOURS_MERCHANTS: {"off_hours_share": UNIT},
    c.SUMMARY_BY_MERCHANT: {"approval_rate": UNIT, "commission_ratio": UNIT},
    c.SUMMARY_BY_SEGMENT: {"approval_rate": UNIT, "commission_ratio": UNIT},
    c.SUMMARY_BY_PERIOD: {"approval_rate": UNIT, "commission_ratio": UNIT},
    c.COMMISSION_BY_CATEGORY_OVER_TIME: {"commission_ratio": UNIT},
}


def key_problems(db, collection: str, fields: Sequence[str]) -> dict:
    coll = db[collection]
    total = coll.count_documents({})
    missing = coll.count_documents({"$or": [{f: None} for f in fields]})
    group_id = {f: f"${f}" for f in fields}
    distinct = sum(1 for _ in coll.aggregate([{"$group": {"_id": group_id}}]))
    return {"documents": total, "missing_key": missing, "distinct_keys": distinct}


def _keys_check(key: dg.AssetKey, collection: str, fields: tuple[str, ...]):
    @dg.asset_check(
        asset=key,
        name="keys_unique_not_null",
        description=f"{', '.join(fields)}: present on every document of {collection}, never shared by two.",
        blocking=False,
    )
    def check(mongo: MongoResource) -> dg.AssetCheckResult:
        with mongo.get_db() as db:
            facts = key_problems(db, collection, fields)
        passed = facts["missing_key"] == 0 and facts["distinct_keys"] == facts["documents"]
        return dg.AssetCheckResult(passed=passed, metadata=facts)

    return check


def range_problems(db, collection: str, ranges: dict[str, tuple[float, float]]) -> dict[str, int]:
    out = {}
    for field, (low, high) in ranges.items():
        out[field] = db[collection].count_documents(
            {"$or": [{field: {"$lt": low}}, {field: {"$gt": high}}]}
        )
    return out


def _range_check(key: dg.AssetKey, collection: str, ranges: dict[str, tuple[float, float]]):
    @dg.asset_check(
        asset=key,
        name="values_in_range",
        description="; ".join(f"{f} in [{lo:g}, {hi:g}]" for f, (lo, hi) in ranges.items()),
    )
    def check(mongo: MongoResource) -> dg.AssetCheckResult:
        with mongo.get_db() as db:
            outside = range_problems(db, collection, ranges)
        return dg.AssetCheckResult(
            passed=not any(outside.values()),
            metadata={f"outside_{f}": n for f, n in outside.items()},
        )

    return check


key_checks = [_keys_check(k, coll, fields) for k, (coll, fields) in NATURAL_KEYS.items()]
range_checks = [_range_check(k, NATURAL_KEYS[k][0], r) for k, r in RANGES.items()]


def _sum(db, collection: str, field: str | int, match: dict | None = None) -> int:
    pipeline = ([{"$match": match}] if match else []) + [
        {"$group": {"_id": None, "n": {"$sum": field if isinstance(field, int) else f"${field}"}}}
    ]
    rows = list(db[collection].aggregate(pipeline))
    return rows[0]["n"] if rows else 0


LAKE_MATCHED = (
    c.COMMISSION_BY_CATEGORY,
    c.CUSTOMER_PROFILES,
    c.CUSTOMER_SEGMENTS,
    c.TEMPORAL_PATTERNS,
    c.SPENDING_TREND,
    c.CATEGORY_COMPARISON,
    c.TRANSACTIONS_DAILY,
    c.SUMMARY_BY_PERIOD,
    c.TRANSACTIONS_COLLECTION,
)


def _lake_figures(lake, cutoff: dt.datetime, now: dt.datetime):
    """One Spark pass over the lake: rows, approved payments, their commission and customers, and
    the events of the detailed store's window [cutoff, now]."""
    return lake.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(is_approved(), 1).otherwise(0)).alias("approved"),
        F.sum(F.when(is_approved(), F.col("commission_amount")).otherwise(0)).alias(
            "approved_commission"
        ),
        F.countDistinct(F.when(is_approved(), F.col("customer_id"))).alias("approved_customers"),
        F.sum(
            F.when(
                (F.col("event_time") >= F.lit(cutoff)) & (F.col("event_time") <= F.lit(now)), 1
            ).otherwise(0)
        ).alias("in_window"),
    ).first()


def _expectations(db, figures, cutoff: dt.datetime, now: dt.datetime) -> dict:
    """asset key -> a callable giving {figure: (in the collection, from the lake)}."""
    rows, approved = figures.rows or 0, figures.approved or 0
    return {
        c.COMMISSION_BY_CATEGORY: lambda: {
            "transaction_count": (
                _sum(db, mc.COMMISSION_BY_CATEGORY, "transaction_count"),
                approved,
            ),
            "total_commission": (
                _sum(db, mc.COMMISSION_BY_CATEGORY, "total_commission"),
                figures.approved_commission or 0,
            ),
        },
        c.CUSTOMER_PROFILES: lambda: {
            "customers": (db[mc.CUSTOMER_PROFILES].count_documents({}), figures.approved_customers),
            "txn_count": (_sum(db, mc.CUSTOMER_PROFILES, "txn_count"), approved),
        },
        c.CUSTOMER_SEGMENTS: lambda: {
            "customers": (db[mc.CUSTOMER_SEGMENTS].count_documents({}), figures.approved_customers)
        },
        c.TEMPORAL_PATTERNS: lambda: {
            "transaction_count": (_sum(db, mc.TEMPORAL_PATTERNS, "transaction_count"), rows)
        },
        c.SPENDING_TREND: lambda: {
            "daily_transaction_count": (
                _sum(db, mc.SPENDING_TREND, "transaction_count", {"period": "day"}),
                rows,
            ),
            "weekly_transaction_count": (
                _sum(db, mc.SPENDING_TREND, "transaction_count", {"period": "week"}),
                rows,
            ),
        },
        c.CATEGORY_COMPARISON: lambda: {
            "transaction_count": (_sum(db, mc.CATEGORY_COMPARISON, "transaction_count"), rows)
        },
        c.TRANSACTIONS_DAILY: lambda: {
            "transaction_count": (_sum(db, mc.TRANSACTIONS_DAILY, "transaction_count"), rows)
        },
        c.SUMMARY_BY_PERIOD: lambda: {
            f"{p}_transaction_count": (
                _sum(db, mc.SUMMARY_BY_PERIOD, "transaction_count", {"period": p}),
                rows,
            )
            for p in ("day", "week", "month")
        },
        c.TRANSACTIONS_COLLECTION: lambda: {
            "documents_in_window": (
                sum(
                    db[ts.COLLECTION].count_documents(
                        {"event_date": day, "event_time": {"$gte": cutoff, "$lte": now}}
                    )
                    for day in ts.window_dates(now)
                ),
                figures.in_window or 0,
            )
        },
    }


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("matches_lake", asset=key) for key in LAKE_MATCHED],
    can_subset=True,
    description="The counts and sums each collection must reproduce from the lake (one Spark pass).",
)
def matches_lake(
    context: dg.AssetCheckExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    now = dt.datetime.now(UTC)
    cutoff = ts.window_start(now)
    figures = _lake_figures(lake, cutoff, now)
    selected = {k.asset_key for k in context.selected_asset_check_keys}
    with mongo.get_db() as db:
        expectations = _expectations(db, figures, cutoff, now)
        for key in LAKE_MATCHED:
            if key not in selected:
                continue
            pairs = expectations[key]()
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name="matches_lake",
                passed=all(got == want for got, want in pairs.values()),
                metadata={
                    **{f"{name}": f"{got} (lake: {want})" for name, (got, want) in pairs.items()},
                    "lake_dir": str(where),
                },
            )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "exactly_once",
            asset=c.TRANSACTIONS_LAKE,
            description="each Kafka record (partition, offset) and each transaction_id appears once",
        ),
        dg.AssetCheckSpec(
            "recent_events",
            asset=c.TRANSACTIONS_LAKE,
            description="the newest event is less than a day old (WARN: a stalled pipeline or an old replay)",
        ),
    ],
    can_subset=True,
)
def lake_checks(
    context: dg.AssetCheckExecutionContext, pyspark: PySparkResource, settings: SettingsResource
):
    lake, where = lake_frame(context, pyspark, settings)
    facts = lake.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("kafka_partition", "kafka_offset").alias("records"),
        F.countDistinct("transaction_id").alias("transactions"),
        F.max("event_time").alias("newest"),
    ).first()
    names = {k.name for k in context.selected_asset_check_keys}
    if "exactly_once" in names:
        yield dg.AssetCheckResult(
            check_name="exactly_once",
            passed=facts.rows == facts.records == facts.transactions,
            metadata={
                "rows": facts.rows,
                "distinct_records": facts.records,
                "distinct_transactions": facts.transactions,
            },
        )
    if "recent_events" in names:
        newest = lake.agg(F.unix_millis(F.max("event_time")).alias("ms")).first().ms
        age_hours = (
            None
            if newest is None
            else (dt.datetime.now(UTC).timestamp() * 1000 - newest) / 3_600_000
        )
        yield dg.AssetCheckResult(
            check_name="recent_events",
            passed=age_hours is not None and age_hours <= 24,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_event_age_hours": round(age_hours, 2) if age_hours is not None else -1,
                "lake_dir": str(where),
            },
        )


#: A refreshed collection carries its write time in `updated_at` (darooghe.mongo_write).
FRESHNESS = dt.timedelta(hours=26)  # the daily refresh plus slack


def _freshness_check(key: dg.AssetKey, collection: str):
    @dg.asset_check(
        asset=key,
        name="updated_within_a_day",
        description=(
            f"the documents of {collection} were written less than {FRESHNESS} ago (updated_at; "
            "for an empty result, the asset's last materialisation)"
        ),
    )
    def check(context: dg.AssetCheckExecutionContext, mongo: MongoResource) -> dg.AssetCheckResult:
        with mongo.get_db() as db:
            newest = next(
                iter(db[collection].find({}, {"updated_at": 1}).sort("updated_at", -1).limit(1)),
                None,
            )
        stamp, source = (newest or {}).get("updated_at"), "updated_at"
        if stamp is None:
            event = context.instance.get_latest_materialization_event(key)
            stamp = dt.datetime.fromtimestamp(event.timestamp, UTC) if event else None
            source = "last materialisation (no documents)"
        if stamp is not None and stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        age = dt.datetime.now(UTC) - stamp if stamp else None
        return dg.AssetCheckResult(
            passed=age is not None and age <= FRESHNESS,
            metadata={
                "updated_at": str(stamp),
                "source": source,
                "age_hours": round(age.total_seconds() / 3600, 2) if age else -1,
            },
        )

    return check


freshness_checks = [_freshness_check(k, coll) for k, (coll, _) in NATURAL_KEYS.items()]
