"""The batch analytics as assets: PySpark on the lake, results replaced in MongoDB collections.

Each asset (or multi-asset, when one computation yields several collections) reads the lake with
the `pyspark` resource, runs one analysis of darooghe.batch, collects the small result and replaces
its collection(s) through darooghe.mongo_write (deterministic `_id`s: re-materialising gives
the same documents, never more). Asset key = collection name.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import dagster as dg
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from darooghe.batch import category_comparison as cc
from darooghe.batch import commission_efficiency as ce
from darooghe.batch import commission_models as cmod
from darooghe.batch import customer_profiles as cp
from darooghe.batch import customer_segments as cs
from darooghe.batch import merchant_spikes as ms
from darooghe.batch import merchants as mr
from darooghe.batch import off_hours as oh
from darooghe.batch import temporal_patterns as tp
from darooghe.batch.business_hours import NO_REFERENCE
from darooghe.batch.documents import collect_documents
from darooghe.mongo_write import WriteResult, replace_collection
from darooghe_assets import constants as c
from darooghe_assets.assets.lake import lake_frame
from darooghe_assets.resources import MongoResource, SettingsResource

#: refreshed daily (darooghe_assets/schedules.py), so late after a day and a bit
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=25)
)
BATCH_SPEC = {
    "deps": [c.TRANSACTIONS_LAKE],
    "group_name": c.GROUP_BATCH,
    "kinds": {"spark", "mongodb"},
    "owners": [c.OWNER],
    "freshness_policy": DAILY_FRESHNESS,
}
PREVIEW_ROWS = 12
#: how a document gets its `_id`: a column, or a function of the document
IdOf = str | Callable[[dict], str]


def md_table(
    docs: Sequence[dict], columns: Sequence[str], limit: int = PREVIEW_ROWS
) -> dg.MetadataValue:
    def cell(v) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(d.get(col)) for col in columns) + " |" for d in docs[:limit]]
    if len(docs) > limit:
        lines.append(f"\n{len(docs) - limit} more rows")
    return dg.MetadataValue.md("\n".join(lines))


def result_metadata(
    docs: Sequence[dict], write: WriteResult, lake_dir: Path, preview: Iterable[str] = ()
) -> dict:
    metadata = {
        "dagster/row_count": len(docs),
        "collection": write.collection,
        "lake_dir": str(lake_dir),
        **write.as_metadata(),
    }
    preview = list(preview)
    if preview:
        metadata["preview"] = md_table(docs, preview)
    return metadata


def write_documents(mongo: MongoResource, collection: str, docs: list[dict]) -> WriteResult:
    with mongo.get_db() as db:
        return replace_collection(db, collection, docs)


def store(
    mongo: MongoResource,
    collection: str,
    frame: DataFrame,
    id_of: IdOf,
    where: Path,
    preview: Iterable[str] = (),
) -> tuple[list[dict], dict]:
    """Collect an analysis' small result, replace `collection` with it; the documents and the
    materialisation's metadata."""
    docs = collect_documents(frame, id_of)
    write = write_documents(mongo, collection, docs)
    return docs, result_metadata(docs, write, where, preview)


def lake_asset(
    key: dg.AssetKey,
    description: str,
    analysis: Callable[[DataFrame], DataFrame],
    id_of: IdOf,
    collection: str,
    preview: Sequence[str],
) -> dg.AssetsDefinition:
    """The asset of one analysis of the lake that fills one collection."""

    @dg.asset(key=key, description=description, **BATCH_SPEC)
    def _asset(
        context: dg.AssetExecutionContext,
        pyspark: PySparkResource,
        mongo: MongoResource,
        settings: SettingsResource,
    ):
        lake, where = lake_frame(context, pyspark, settings)
        docs, metadata = store(mongo, collection, analysis(lake), id_of, where, preview)
        context.log.info(f"{collection}: {len(docs)} documents written from {where}")
        return dg.MaterializeResult(metadata=metadata)

    return _asset


commission_by_category = lake_asset(
    c.COMMISSION_BY_CATEGORY,
    "Commission efficiency per merchant category, approved transactions: transaction_count, "
    "total_amount, total_commission, avg_commission, commission_ratio = commission / amount.",
    ce.commission_by_category,
    ce.KEY,
    ce.COLLECTION,
    [
        "merchant_category",
        "transaction_count",
        "total_amount",
        "total_commission",
        "commission_ratio",
    ],
)


@dg.multi_asset(
    name="commission_models",
    specs=[
        dg.AssetSpec(
            c.COMMISSION_MODELS,
            description="The approved history re-priced under flat, progressive and tiered per category: revenue, ratio, cost, profit (assumptions in darooghe/batch/commission_models.py).",
            **BATCH_SPEC,
        ),
        dg.AssetSpec(
            c.COMMISSION_RECOMMENDATIONS,
            description="Recommended commission structure per category with the numbers behind it, and the per-transaction recommendation UDF validated against the history.",
            **BATCH_SPEC,
        ),
    ],
)
def commission_models(
    context: dg.AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    simulation, recommendations = cmod.commission_recommendations(lake)
    sim_docs = collect_documents(simulation, lambda d: f"{d['merchant_category']}|{d['structure']}")
    rec_docs = collect_documents(recommendations, "merchant_category")
    simulation.unpersist()
    sim_write = write_documents(mongo, cmod.MODELS_COLLECTION, sim_docs)
    rec_write = write_documents(mongo, cmod.RECOMMENDATIONS_COLLECTION, rec_docs)
    yield dg.MaterializeResult(
        asset_key=c.COMMISSION_MODELS,
        metadata=result_metadata(
            sim_docs,
            sim_write,
            where,
            ["merchant_category", "structure", "revenue", "commission_ratio", "profit", "rank"],
        ),
    )
    yield dg.MaterializeResult(
        asset_key=c.COMMISSION_RECOMMENDATIONS,
        metadata={
            **result_metadata(
                rec_docs,
                rec_write,
                where,
                [
                    "merchant_category",
                    "recommended_structure",
                    "recommended_revenue",
                    "historical_revenue",
                    "udf_agreement",
                ],
            ),
            "udf_agreement_min": min(
                (d.get("udf_agreement") or 0.0 for d in rec_docs), default=1.0
            ),
            "udf_transactions_worse": sum(d.get("udf_transactions_worse") or 0 for d in rec_docs),
            "assumptions": dg.MetadataValue.md(
                f"Volume fixed; cost {cmod.ASSUMED_COST_PER_TRANSACTION:,} IRR + {cmod.ASSUMED_COST_BP} bp "
                f"per payment, the same under every structure; ties go to {', '.join(cmod.STRUCTURE_PREFERENCE)}."
            ),
        },
    )


@dg.multi_asset(
    name="temporal_patterns",
    specs=[
        dg.AssetSpec(
            c.TEMPORAL_PATTERNS,
            description="Volume and spending per (day of week, hour), Tehran time, the full 7 x 24 grid.",
            **BATCH_SPEC,
        ),
        dg.AssetSpec(
            c.HOURLY_PROFILE,
            description="The 24 Tehran hours with their share of the volume and the peak hours ranked.",
            **BATCH_SPEC,
        ),
        dg.AssetSpec(
            c.CATEGORY_DAY_PARTS,
            description="Volume and spending per merchant category and part of the day (morning, afternoon, evening, night).",
            **BATCH_SPEC,
        ),
        dg.AssetSpec(
            c.SPENDING_TREND,
            description="Spending per Tehran day and ISO week, with growth against the previous period.",
            **BATCH_SPEC,
        ),
    ],
)
def temporal_patterns(
    context: dg.AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    outputs = (
        (
            c.TEMPORAL_PATTERNS,
            tp.TEMPORAL_COLLECTION,
            tp.hour_weekday_profile(lake),
            tp.hour_weekday_id,
            ["day_name", "hour", "transaction_count", "total_amount"],
        ),
        (
            c.HOURLY_PROFILE,
            tp.HOURLY_COLLECTION,
            tp.hourly_profile(lake),
            lambda d: str(d["hour"]),
            ["hour", "transaction_count", "share", "peak_rank"],
        ),
        (
            c.CATEGORY_DAY_PARTS,
            tp.DAY_PARTS_COLLECTION,
            tp.day_parts_by_category(lake),
            tp.day_part_id,
            ["merchant_category", "part_of_day", "transaction_count", "share"],
        ),
        (
            c.SPENDING_TREND,
            tp.TREND_COLLECTION,
            tp.spending_trend(lake),
            tp.trend_id,
            ["period", "period_key", "transaction_count", "total_amount", "growth"],
        ),
    )
    for key, collection, frame, id_of, preview in outputs:
        docs, metadata = store(mongo, collection, frame, id_of, where, preview)
        if key == c.HOURLY_PROFILE:
            metadata["peak_hours"] = ", ".join(
                str(d["hour"])
                for d in sorted(docs, key=lambda d: d["peak_rank"] or 99)
                if d["is_peak"]
            )
        yield dg.MaterializeResult(asset_key=key, metadata=metadata)


customer_profiles = lake_asset(
    c.CUSTOMER_PROFILES,
    "One document per customer with an approved payment: txn_count and avg_amount (approved; "
    "the fraud job's historical average), total, first/last seen, home city, customer type, segment.",
    cp.customer_profiles,
    cp.KEY,
    cp.COLLECTION,
    ["customer_id", "txn_count", "avg_amount", "home_city", "segment"],
)


@dg.asset(
    key=c.CUSTOMER_SEGMENTS,
    description=(
        "RFM per customer (recency, frequency, monetary of approved payments; scores 1-5 by percentile) "
        "with a readable segment name; also writes the per-segment summary `segment_summary`."
    ),
    **BATCH_SPEC,
)
def customer_segments(
    context: dg.AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    segments = cs.rfm(lake).cache()
    docs = collect_documents(segments.drop("reference_time"), "customer_id")
    summary = collect_documents(cs.segment_summary(segments), "segment")
    segments.unpersist()
    write = write_documents(mongo, cs.SEGMENTS_COLLECTION, docs)
    summary_write = write_documents(mongo, cs.SUMMARY_COLLECTION, summary)
    return dg.MaterializeResult(
        metadata={
            **result_metadata(docs, write, where),
            "segment_summary_documents": summary_write.written,
            "segment_summary": md_table(
                summary,
                ["segment", "customers", "avg_recency_days", "avg_frequency", "avg_monetary"],
            ),
        }
    )


category_comparison = lake_asset(
    c.CATEGORY_COMPARISON,
    "Merchant categories side by side: volume, approval and decline rates, amounts, commission, "
    "reach, risk, payment-method mix.",
    cc.category_comparison,
    cc.KEY,
    cc.COLLECTION,
    ["merchant_category", "transaction_count", "approval_rate", "total_amount", "share_of_amount"],
)


OFF_HOURS_SPEC = {**BATCH_SPEC, "deps": [c.TRANSACTIONS_LAKE, c.MERCHANTS]}
MERCHANTS_REFERENCED = "merchants_have_reference"


@dg.multi_asset(
    name="off_hours",
    specs=[
        dg.AssetSpec(
            c.OFF_HOURS_TRANSACTIONS,
            description="In-person payments (pos, nfc) outside the merchant's business hours (Tehran time), "
            "the hours from the merchants reference collection.",
            **OFF_HOURS_SPEC,
        ),
        dg.AssetSpec(
            c.OFF_HOURS_MERCHANTS,
            description="Per merchant: in-person payments, those outside business hours and their share; "
            "a merchant without a reference record is listed but not judged.",
            **OFF_HOURS_SPEC,
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            MERCHANTS_REFERENCED,
            asset=c.OFF_HOURS_MERCHANTS,
            description="every merchant of the transactions has a reference record in `merchants`, "
            "under the category the transactions name (else its payments were not judged, or were "
            "judged against another merchant's hours)",
        )
    ],
)
def off_hours(
    context: dg.AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    settings: SettingsResource,
):
    lake, where = lake_frame(context, pyspark, settings)
    with mongo.get_db() as db:
        merchants = mr.load_register(db)
    detail = collect_documents(oh.off_hours_transactions(lake, merchants), "transaction_id")
    per_merchant = collect_documents(oh.off_hours_by_merchant(lake, merchants), "merchant_id")
    uncovered = [row.asDict() for row in mr.coverage(lake, merchants).collect()]
    missing = [u for u in uncovered if u["problem"] == NO_REFERENCE]
    differs = [u for u in uncovered if u["problem"] == mr.CATEGORY_DIFFERS]
    coverage = {
        "reference_merchants": len(merchants),
        "merchants_without_reference": len({u["merchant_id"] for u in missing}),
        "payments_not_judged": sum(u["in_person_count"] for u in missing),
        "merchants_with_other_category": len({u["merchant_id"] for u in differs}),
    }
    if uncovered:
        context.log.warning(
            f"off_hours: {len(missing)} merchants without a reference record (their "
            f"{coverage['payments_not_judged']} in-person payments not judged), {len(differs)} "
            "under another category than the register's: "
            + ", ".join(u["merchant_id"] for u in uncovered[:10])
        )
    detail_write = write_documents(mongo, oh.TRANSACTIONS_COLLECTION, detail)
    merchant_write = write_documents(mongo, oh.MERCHANTS_COLLECTION, per_merchant)
    yield dg.MaterializeResult(
        asset_key=c.OFF_HOURS_TRANSACTIONS,
        metadata=result_metadata(
            detail,
            detail_write,
            where,
            ["transaction_id", "merchant_id", "local_time", "open_hour", "close_hour"],
        ),
    )
    yield dg.MaterializeResult(
        asset_key=c.OFF_HOURS_MERCHANTS,
        metadata={
            **result_metadata(
                per_merchant,
                merchant_write,
                where,
                [
                    "merchant_id",
                    "in_person_count",
                    "off_hours_count",
                    "off_hours_share",
                    "hours_source",
                ],
            ),
            **coverage,
        },
    )
    problem_columns = [
        "merchant_id",
        "merchant_category",
        "reference_category",
        "transaction_count",
        "problem",
    ]
    yield dg.AssetCheckResult(
        asset_key=c.OFF_HOURS_MERCHANTS,
        check_name=MERCHANTS_REFERENCED,
        passed=not uncovered,
        metadata={
            **coverage,
            **({"merchants": md_table(uncovered, problem_columns)} if uncovered else {}),
        },
    )


merchant_spikes = lake_asset(
    c.MERCHANT_SPIKES,
    "Merchant hours whose volume is at least 3x the mean of the 24 hours before (and at least 5 "
    "payments).",
    ms.merchant_spikes,
    ms.spike_id,
    ms.COLLECTION,
    ["merchant_id", "hour_start", "transaction_count", "baseline_mean", "ratio"],
)
