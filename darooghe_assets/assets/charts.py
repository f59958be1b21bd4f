"""One asset per chart, reading MongoDB, writing PNG + HTML under $DAROOGHE_HOME/charts, and the
dashboard page gathering them.

Each chart's PNG is attached inline to its materialisation (a base64 data URI in a Markdown
metadata value, as in Dagster's quickstart_etl), so the picture is in the UI next to the lineage.
A chart whose collections are still empty materialises anyway, drawing "no data yet" and saying so
in its metadata (`empty`, `note`). Charts and the dashboard are eager: in `dagster dev` they are
redrawn after the collections they read are rewritten (e.g. by the sink sensors' runs).
"""

import base64

import dagster as dg

from darooghe.charts import catalog
from darooghe.charts import sources as src
from darooghe.charts.dashboard import build_dashboard
from darooghe_assets import constants as c
from darooghe_assets.resources import MongoResource, SettingsResource

#: collection -> key of the asset that writes it (asset key = collection name, see constants)
COLLECTION_KEYS = {
    src.TRANSACTIONS: c.TRANSACTIONS_COLLECTION,
    src.TRANSACTIONS_HOURLY: c.TRANSACTIONS_COLLECTION,  # rollups written with the transactions
    src.ACTIVITY_HOURLY: c.TRANSACTIONS_COLLECTION,
    src.SPENDING_TREND: dg.AssetKey(src.SPENDING_TREND),  # batch layer; not in constants yet
    src.CUSTOMER_PROFILES: c.CUSTOMER_PROFILES,
    src.CUSTOMER_SEGMENTS: c.CUSTOMER_SEGMENTS,
    src.SEGMENT_SUMMARY: c.CUSTOMER_SEGMENTS,  # written by the customer_segments asset
    src.COMMISSION_BY_CATEGORY: c.COMMISSION_BY_CATEGORY,
    src.TEMPORAL_PATTERNS: dg.AssetKey(src.TEMPORAL_PATTERNS),  # batch layer; not in constants yet
    src.FRAUD_ALERTS: c.FRAUD_ALERTS_COLLECTION,
    src.ERROR_SUMMARY: c.ERROR_SUMMARY_COLLECTION,
    src.LIVE_CATEGORY_VOLUME: c.LIVE_CATEGORY_VOLUME,
    src.LIVE_COMMISSION_BY_TYPE: c.LIVE_COMMISSION_BY_TYPE,
    src.LIVE_COMMISSION_RATIO: c.LIVE_COMMISSION_RATIO,
    src.LIVE_TOP_MERCHANTS: c.LIVE_TOP_MERCHANTS,
}


def chart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([c.CHARTS_PREFIX, name])


def inline_png(png: bytes, title: str) -> dg.MetadataValue:
    return dg.MetadataValue.md(
        f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"
    )


def _chart_asset(spec: catalog.ChartSpec) -> dg.AssetsDefinition:
    deps = list(dict.fromkeys(COLLECTION_KEYS[name] for name in spec.reads))

    @dg.asset(
        key=chart_key(spec.name),
        deps=deps,
        description=f"{spec.description} Reads {', '.join(spec.reads)}; writes {spec.name}.png and .html.",
        group_name=c.GROUP_CHARTS,
        kinds={"seaborn", "plotly", "mongodb"},
        owners=[c.OWNER],
        automation_condition=dg.AutomationCondition.eager(),
    )
    def _chart(
        context: dg.AssetExecutionContext, mongo: MongoResource, settings: SettingsResource
    ) -> dg.MaterializeResult:
        with mongo.get_db() as db:
            chart, files = catalog.render(spec.name, db, settings.get().charts_dir)
        context.log.info(
            f"{spec.name}: {'no data yet' if chart.empty else f'{chart.rows_read} rows'} -> {files.png}, {files.html}"
        )
        return dg.MaterializeResult(
            metadata={
                "plot": inline_png(files.png_bytes, chart.title),
                "png": dg.MetadataValue.path(str(files.png)),
                "html": dg.MetadataValue.path(str(files.html)),
                "rows_read": chart.rows_read,
                "empty": chart.empty,
                "note": chart.note() or "all panels drawn",
                "sources": ", ".join(chart.sources),
            }
        )

    return _chart


chart_assets = [_chart_asset(spec) for spec in catalog.CHARTS]


@dg.asset(
    key=c.DASHBOARD,
    deps=[chart_key(spec.name) for spec in catalog.CHARTS],
    description="dashboard.html: every interactive chart on one self-contained page (plotly.js embedded).",
    group_name=c.GROUP_CHARTS,
    kinds={"plotly", "html"},
    owners=[c.OWNER],
    automation_condition=dg.AutomationCondition.eager(),
)
def dashboard(
    context: dg.AssetExecutionContext, settings: SettingsResource
) -> dg.MaterializeResult:
    report = build_dashboard(settings.get().charts_dir)
    context.log.info(f"dashboard: {len(report.charts)} charts -> {report.path}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(report.path)),
            "url": dg.MetadataValue.url(report.path.resolve().as_uri()),
            "charts": len(report.charts),
            "empty_charts": ", ".join(report.empty) or "none",
            "missing_charts": ", ".join(report.missing) or "none",
            "size_bytes": report.size_bytes,
        }
    )
