"""Darooghe's commission: by commission type and by merchant category, historical and live."""

from __future__ import annotations

import pandas as pd
from pymongo.database import Database

from darooghe import schema
from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel
from darooghe.topics import LIVE_METRICS_SPAN_MS

LIVE_SPAN = pd.Timedelta(milliseconds=LIVE_METRICS_SPAN_MS)


def _ordered(frame: pd.DataFrame, column: str, order: tuple[str, ...]) -> pd.DataFrame:
    rank = {name: i for i, name in enumerate(order)}
    return frame.sort_values(
        column, key=lambda s: s.map(lambda v: rank.get(v, len(rank)))
    ).reset_index(drop=True)


def _live(db: Database, collection: str, fields: list[str]) -> pd.DataFrame:
    recent = src.latest_span(db, collection, "window_start", LIVE_SPAN)
    frame = src.fetch(db, collection, fields, recent) if recent else pd.DataFrame(columns=fields)
    if not frame.empty:
        frame["window_start"] = src.utc_naive(frame["window_start"])
    return frame


def commission_by_type(db: Database) -> Chart:
    # The rollup counts commission on approved payments only: a declined payment collects none.
    fields = [f"{kind}_{ctype}" for ctype in schema.COMMISSION_TYPES for kind in ("approved", "commission")]
    rollup = src.window_rollup(db, src.TRANSACTIONS_HOURLY, fields)
    sums = rollup[fields].sum()
    totals = pd.DataFrame(
        {
            "commission_type": list(schema.COMMISSION_TYPES),
            "total_commission": [sums[f"commission_{t}"] for t in schema.COMMISSION_TYPES],
            "transactions": [sums[f"approved_{t}"] for t in schema.COMMISSION_TYPES],
        }
    )
    totals = totals[totals["transactions"] > 0].reset_index(drop=True)
    totals["avg_commission"] = totals["total_commission"] / totals["transactions"]
    totals = _ordered(totals, "commission_type", schema.COMMISSION_TYPES)
    live = _live(
        db, src.LIVE_COMMISSION_BY_TYPE, ["window_start", "commission_type", "total_commission"]
    )
    return Chart(
        name="commission_by_type",
        title="Commission by commission type",
        sources=(src.TRANSACTIONS_HOURLY, src.LIVE_COMMISSION_BY_TYPE),
        rows_read=len(rollup) + len(live),
        panels=[
            Panel(
                "Total commission, last 24 h",
                "bar",
                totals,
                x="commission_type",
                y="total_commission",
                hue="commission_type",
                xlabel="Commission type",
                ylabel="Commission ({irr})",
                source=src.TRANSACTIONS_HOURLY,
                irr_column="total_commission",
            ),
            Panel(
                "Average commission per approved payment, last 24 h",
                "bar",
                totals,
                x="commission_type",
                y="avg_commission",
                hue="commission_type",
                xlabel="Commission type",
                ylabel="Commission per payment ({irr})",
                source=src.TRANSACTIONS_HOURLY,
                irr_column="avg_commission",
            ),
            Panel(
                "Live commission per minute (last 3 h)",
                "line",
                live,
                x="window_start",
                y="total_commission",
                hue="commission_type",
                legend_title="commission type",
                xlabel="Minute (UTC)",
                ylabel="Commission ({irr})",
                source=src.LIVE_COMMISSION_BY_TYPE,
                irr_column="total_commission",
            ),
        ],
    )


def _category_totals(db: Database) -> pd.DataFrame:
    """The batch layer's commission by category, with the ratio in percent, in category order."""
    fields = [
        "merchant_category",
        "transaction_count",
        "total_amount",
        "total_commission",
        "avg_commission",
    ]
    categories = src.fetch(db, src.COMMISSION_BY_CATEGORY, fields).dropna(
        subset=["merchant_category"]
    )
    if not categories.empty:
        # The ratio is recomputed from the totals so it is a percentage whatever unit was stored.
        amount = categories["total_amount"].where(categories["total_amount"] > 0)
        categories["ratio_pct"] = 100 * categories["total_commission"] / amount
        categories = _ordered(categories, "merchant_category", schema.MERCHANT_CATEGORIES)
    return categories


def _live_ratio(db: Database) -> pd.DataFrame:
    """The live commission ratio per 1-minute window and category, in percent."""
    live = _live(
        db,
        src.LIVE_COMMISSION_RATIO,
        ["window_start", "merchant_category", "total_commission", "total_amount"],
    )
    if not live.empty:
        live["ratio_pct"] = (
            100 * live["total_commission"] / live["total_amount"].where(live["total_amount"] > 0)
        )
        live = live.dropna(subset=["ratio_pct"])
    return live


def _category_bar(categories: pd.DataFrame, title: str, y: str, ylabel: str, **kw) -> Panel:
    return Panel(
        title,
        "bar",
        categories,
        x="merchant_category",
        y=y,
        hue="merchant_category",
        xlabel="Merchant category",
        ylabel=ylabel,
        source=src.COMMISSION_BY_CATEGORY,
        **kw,
    )


def commission_by_category(db: Database) -> Chart:
    categories = _category_totals(db)
    live = _live_ratio(db)
    return Chart(
        name="commission_by_category",
        title="Commission by merchant category",
        sources=(src.COMMISSION_BY_CATEGORY, src.LIVE_COMMISSION_RATIO),
        rows_read=len(categories) + len(live),
        panels=[
            _category_bar(
                categories,
                "Total commission (history)",
                "total_commission",
                "Commission ({irr})",
                irr_column="total_commission",
            ),
            _category_bar(
                categories, "Commission ratio (history)", "ratio_pct", "Commission / amount (%)"
            ),
            _category_bar(
                categories,
                "Average commission per approved payment (history)",
                "avg_commission",
                "Commission per payment ({irr})",
                irr_column="avg_commission",
            ),
            Panel(
                "Live commission ratio (1-minute windows, last 3 h)",
                "line",
                live,
                x="window_start",
                y="ratio_pct",
                hue="merchant_category",
                legend_title="category",
                xlabel="Window start (UTC)",
                ylabel="Commission / amount (%)",
                source=src.LIVE_COMMISSION_RATIO,
            ),
        ],
    )
