"""MongoDB storage assets: the detailed last-24-hour `transactions`, its hourly retention, the
long-term daily fact and the summaries MongoDB aggregates from it.

See darooghe/batch/transactions_store.py for the window, the partitioning strategy, the indexes and
TTL detection, and darooghe/batch/summaries.py for the aggregation pipelines (within FerretDB 1.x).
"""

import datetime as dt

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field, field_validator

from darooghe.batch import daily_activity as da
from darooghe.batch import summaries as sm
from darooghe.batch import transactions_store as ts
from darooghe.batch.customer_segments import rfm
from darooghe.batch.documents import collect_documents
from darooghe_assets import constants as c
from darooghe_assets.assets.batch import DAILY_FRESHNESS, md_table, result_metadata, write_documents
from darooghe_assets.assets.lake import lake_frame
from darooghe_assets.resources import MongoResource, SettingsResource
from darooghe_assets.run_config_guards import allowed_instant

UTC = dt.UTC
#: refreshed hourly (darooghe_assets/schedules.py)
HOURLY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=2), warn_window=dt.timedelta(minutes=90)
)


class ClockConfig(dg.Config):
    now: str = Field(
        default="",
        description="ISO-8601 instant to act as 'now' (empty: the wall clock); for replays and "
        "tests; at most the clock-skew allowance in the future",
    )

    @field_validator("now")
    @classmethod
    def _instant_allowed(cls, value: str) -> str:
        return allowed_instant("now", value)

    def instant(self) -> dt.datetime:
        if not self.now:
            return dt.datetime.now(UTC)
        value = dt.datetime.fromisoformat(self.now)  # Python 3.11 reads a trailing Z
        if value.tzinfo is None:
            raise ValueError(
                f"config now={self.now!r} has no time zone; expected e.g. 2026-03-23T12:00:00Z"
            )
        return value.astimezone(UTC)


@dg.asset(
    key=c.TRANSACTIONS_COLLECTION,
    deps=[c.TRANSACTIONS_LAKE],
    group_name=c.GROUP_STORAGE,
    kinds={"spark", "mongodb"},
    owners=[c.OWNER],
    freshness_policy=HOURLY_FRESHNESS,
    description=(
        "Detailed valid transactions of the last 24 hours for dashboards: _id = transaction_id, the "
        "event fields, event_time/event_date/event_hour; partitioned by UTC hour, an index per access "
        "path, hourly rollups (transactions_hourly, activity_hourly) for the charts, retention on "
        "every load, TTL index where the server has one. Loaded incrementally from the lake."
    ),
)
def transactions(
    context: dg.AssetExecutionContext,
    config: ClockConfig,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    now = config.instant()
    with mongo.get_db() as db:
        indexes = ts.ensure_indexes(db, mongo.postgres_url(settings.get()))
        loaded = ts.load_recent_transactions(
            lake, db, mongo.uri, str(where), now=now, log=context.log.info
        )
        plans = ts.explain_dashboard_queries(db, now)
        # Sum of the hourly activity rollup: counting 1.44 M documents through FerretDB takes a minute.
        documents = sum(d.get("transactions", 0) for d in db[ts.ACTIVITY].find({}, {"transactions": 1}))
    plan_rows = [
        {"query": name, **{k: str(v) for k, v in plan.items()}} for name, plan in plans.items()
    ]
    return dg.MaterializeResult(
        metadata={
            **loaded.as_metadata(),
            **indexes.as_metadata(),
            "dagster/row_count": documents,
            "lake_dir": str(where),
            "query_plans": md_table(
                plan_rows, ["query", "uses_index", "collection_scan", "filter_pushdown", "server"]
            ),
        }
    )


@dg.asset(
    key=c.TRANSACTIONS_RETENTION,
    deps=[c.TRANSACTIONS_COLLECTION],
    group_name=c.GROUP_STORAGE,
    kinds={"mongodb"},
    owners=[c.OWNER],
    freshness_policy=HOURLY_FRESHNESS,
    description="Hourly retention of `transactions`: removes the documents whose event time is more than 24 hours old.",
)
def transactions_retention(context: dg.AssetExecutionContext, config: ClockConfig, mongo: MongoResource):
    with mongo.get_db() as db:
        result = ts.apply_retention(db, config.instant(), log=context.log.info)
    return dg.MaterializeResult(metadata=result.as_metadata())


@dg.asset(
    key=c.TRANSACTIONS_DAILY,
    deps=[c.TRANSACTIONS_LAKE],
    group_name=c.GROUP_STORAGE,
    kinds={"spark", "mongodb"},
    owners=[c.OWNER],
    freshness_policy=DAILY_FRESHNESS,
    description=(
        "The long-term daily fact: one document per (Tehran day, merchant, customer segment) with "
        "volume, approvals, amount and commission, and the period fields (week, month) the MongoDB "
        "summaries group on."
    ),
)
def transactions_daily(
    context: dg.AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    docs = collect_documents(da.daily_activity(lake, rfm(lake)), da.daily_id)
    write = write_documents(mongo, da.COLLECTION, docs)
    return dg.MaterializeResult(
        metadata={
            **result_metadata(
                docs,
                write,
                where,
                ["local_date", "merchant_id", "segment", "transaction_count", "approved_amount"],
            ),
            "transactions_covered": sum(d["transaction_count"] for d in docs),
        }
    )


SUMMARY_KEYS = {
    sm.BY_MERCHANT: c.SUMMARY_BY_MERCHANT,
    sm.BY_SEGMENT: c.SUMMARY_BY_SEGMENT,
    sm.BY_PERIOD: c.SUMMARY_BY_PERIOD,
    sm.CATEGORY_OVER_TIME: c.COMMISSION_BY_CATEGORY_OVER_TIME,
}
SUMMARY_DESCRIPTIONS = {
    sm.BY_MERCHANT: "Transactions by merchant over the whole history (MongoDB aggregation of transactions_daily).",
    sm.BY_SEGMENT: "Transactions by customer segment (MongoDB aggregation of transactions_daily).",
    sm.BY_PERIOD: "Transactions by day, ISO week and month, Tehran time (MongoDB aggregation of transactions_daily).",
    sm.CATEGORY_OVER_TIME: "Commission per merchant category per day (MongoDB aggregation of transactions_daily).",
}


@dg.multi_asset(
    name="mongo_summaries",
    specs=[
        dg.AssetSpec(
            key,
            deps=[c.TRANSACTIONS_DAILY],
            group_name=c.GROUP_STORAGE,
            kinds={"mongodb"},
            owners=[c.OWNER],
            freshness_policy=DAILY_FRESHNESS,
            description=SUMMARY_DESCRIPTIONS[name],
        )
        for name, key in SUMMARY_KEYS.items()
    ],
)
def mongo_summaries(context: dg.AssetExecutionContext, mongo: MongoResource):
    with mongo.get_db() as db:
        results = sm.build_summaries(db)
    for name, result in results.items():
        context.log.info(f"{name}: {result.documents} documents from MongoDB aggregation pipelines")
        yield dg.MaterializeResult(
            asset_key=SUMMARY_KEYS[name],
            metadata={
                "dagster/row_count": result.documents,
                "collection": name,
                **result.write.as_metadata(),
            },
        )
