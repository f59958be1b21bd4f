"""Every chart the project draws: its name (file and asset name), what it shows, what it reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pymongo.database import Database

from darooghe.charts import alerts, customers, merchants, revenue, temporal, volume
from darooghe.charts import sources as src
from darooghe.charts.files import ChartFiles, write_chart
from darooghe.charts.model import Chart


@dataclass(frozen=True)
class ChartSpec:
    name: str
    description: str
    #: collections read, in the order the chart's panels use them
    reads: tuple[str, ...]
    build: Callable[[Database], Chart]


CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec(
        "volume_history",
        "Transactions and amount per day (history) and per hour (last 24 h).",
        (src.SPENDING_TREND, src.TRANSACTIONS_HOURLY),
        volume.volume_history,
    ),
    ChartSpec(
        "volume_live",
        "Live transactions and amount per minute by merchant category.",
        (src.LIVE_CATEGORY_VOLUME,),
        volume.volume_live,
    ),
    ChartSpec(
        "top_merchants",
        "Top 5 merchants by transaction count and by commission (last 24 h).",
        (src.TRANSACTIONS_HOURLY,),
        merchants.top_merchants,
    ),
    ChartSpec(
        "top_merchants_live",
        "The live top 5 merchants by commission in the latest 5-minute window.",
        (src.LIVE_TOP_MERCHANTS,),
        merchants.top_merchants_live,
    ),
    ChartSpec(
        "user_activity",
        "Transactions per customer, activity frequency, new and active customers.",
        (src.CUSTOMER_PROFILES, src.ACTIVITY_HOURLY),
        customers.user_activity,
    ),
    ChartSpec(
        "customer_segments",
        "Customer segments by recency, frequency and spend.",
        (src.CUSTOMER_SEGMENTS, src.SEGMENT_SUMMARY),
        customers.customer_segments,
    ),
    ChartSpec(
        "fraud_alerts", "Fraud alerts by rule over time.", (src.FRAUD_ALERTS,), alerts.fraud_alerts
    ),
    ChartSpec(
        "fraud_decisions",
        "REVIEW and BLOCK decisions per hour, with their counts.",
        (src.FRAUD_DECISIONS,),
        alerts.fraud_decisions,
    ),
    ChartSpec(
        "validation_errors",
        "Invalid records by error code over time.",
        (src.ERROR_SUMMARY,),
        alerts.validation_errors,
    ),
    ChartSpec(
        "commission_by_type",
        "Commission by commission type, last 24 h and live.",
        (src.TRANSACTIONS_HOURLY, src.LIVE_COMMISSION_BY_TYPE),
        revenue.commission_by_type,
    ),
    ChartSpec(
        "commission_by_category",
        "Commission, ratio and average by merchant category, history and live.",
        (src.COMMISSION_BY_CATEGORY, src.LIVE_COMMISSION_RATIO),
        revenue.commission_by_category,
    ),
    ChartSpec(
        "temporal_heatmap",
        "Transactions and amount by weekday and hour, Tehran time.",
        (src.TEMPORAL_PATTERNS,),
        temporal.temporal_heatmap,
    ),
)
BY_NAME = {spec.name: spec for spec in CHARTS}


def chart_spec(name: str) -> ChartSpec:
    if name not in BY_NAME:
        raise KeyError(f"unknown chart {name!r}; expected one of {', '.join(BY_NAME)}")
    return BY_NAME[name]


def render(name: str, db: Database, out_dir: Path) -> tuple[Chart, ChartFiles]:
    """Build chart `name` from MongoDB and write its PNG, HTML and figure JSON under `out_dir`."""
    chart = chart_spec(name).build(db)
    return chart, write_chart(chart, Path(out_dir))


def render_all(
    db: Database, out_dir: Path, log: Callable[[str], None] = print
) -> list[tuple[Chart, ChartFiles]]:
    results = []
    for i, spec in enumerate(CHARTS, start=1):
        t0 = time.monotonic()
        chart, files = render(spec.name, db, out_dir)
        state = "EMPTY (no data yet)" if chart.empty else f"{chart.rows_read} rows"
        log(
            f"chart {i}/{len(CHARTS)} {spec.name}: {state}, {time.monotonic() - t0:.1f} s -> {files.png}"
        )
        results.append((chart, files))
    return results
