"""Transaction volume over time: the history (days and the last 24 hours) and the live minutes."""

from __future__ import annotations

import pandas as pd
from pymongo.database import Database

from darooghe import schema
from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel
from darooghe.topics import LIVE_METRICS_SPAN_MS

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
#: how much of the live metrics the live chart shows
LIVE_SPAN = pd.Timedelta(milliseconds=LIVE_METRICS_SPAN_MS)


def _daily(db: Database, by_hour: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Transactions and approved amount per day, and where they were read."""
    daily = src.fetch(
        db,
        src.SPENDING_TREND,
        ["period_start", "transaction_count", "total_amount"],
        {"period": "day"},
    )
    if not daily.empty:
        daily["period_start"] = src.utc_naive(daily["period_start"])
        return daily, src.SPENDING_TREND
    # Before the batch layer has run, the last 24 hours' rollups still give a day or two.
    per_day = by_hour.groupby(by_hour.index.floor("D")).sum()
    daily = pd.DataFrame(
        {
            "period_start": per_day.index,
            "transaction_count": per_day[list(schema.STATUSES)].sum(axis=1).to_numpy(),
            "total_amount": per_day["approved_amount"].to_numpy(),
        }
    )
    return daily, f"{src.SPENDING_TREND} and {src.TRANSACTIONS_HOURLY}"


def _hourly_by_status(by_hour: pd.DataFrame) -> pd.DataFrame:
    """Long form (hour, status, transaction_count) of the hours' counts, without empty rows."""
    hourly = (
        by_hour[list(schema.STATUSES)]
        .rename_axis(columns="status")
        .stack()
        .rename("transaction_count")
        .reset_index()
    )
    return hourly[hourly["transaction_count"] > 0].reset_index(drop=True)


def _daily_panels(daily: pd.DataFrame, source: str) -> list[Panel]:
    return [
        Panel(
            "Transactions per day",
            "timebar",
            daily,
            x="period_start",
            y="transaction_count",
            xlabel="Day (UTC)",
            ylabel="Transactions per day",
            source=source,
            bucket=DAY,
        ),
        Panel(
            "Spending per day (approved amount)",
            "timebar",
            daily,
            x="period_start",
            y="total_amount",
            xlabel="Day (UTC)",
            ylabel="Amount ({irr})",
            source=source,
            bucket=DAY,
            irr_column="total_amount",
        ),
    ]


def _hourly_panels(hourly: pd.DataFrame, hourly_amount: pd.DataFrame) -> list[Panel]:
    return [
        Panel(
            "Transactions per hour, last 24 h, by status",
            "timebar",
            hourly,
            x="hour",
            y="transaction_count",
            hue="status",
            legend_title="status",
            xlabel="Hour (UTC)",
            ylabel="Transactions per hour",
            source=src.TRANSACTIONS_HOURLY,
            bucket=HOUR,
        ),
        Panel(
            "Approved amount per hour, last 24 h",
            "timebar",
            hourly_amount,
            x="hour",
            y="amount",
            xlabel="Hour (UTC)",
            ylabel="Amount ({irr})",
            source=src.TRANSACTIONS_HOURLY,
            bucket=HOUR,
            irr_column="amount",
        ),
    ]


def volume_history(db: Database) -> Chart:
    rollup = src.window_rollup(
        db, src.TRANSACTIONS_HOURLY, [*schema.STATUSES, "approved_amount"]
    )
    by_hour = rollup.groupby("hour")[[*schema.STATUSES, "approved_amount"]].sum()
    daily, daily_source = _daily(db, by_hour)
    # Volume counts every valid transaction; spending only approved ones.
    hourly = _hourly_by_status(by_hour)
    hourly_amount = by_hour["approved_amount"].rename("amount").reset_index()
    return Chart(
        name="volume_history",
        title="Transaction volume over time (history)",
        sources=(src.SPENDING_TREND, src.TRANSACTIONS_HOURLY),
        rows_read=len(daily) + len(rollup),
        panels=[*_daily_panels(daily, daily_source), *_hourly_panels(hourly, hourly_amount)],
    )


def volume_live(db: Database) -> Chart:
    fields = [
        "window_start",
        "window_end",
        "merchant_category",
        "transaction_count",
        "total_amount",
    ]
    recent = src.latest_span(db, src.LIVE_CATEGORY_VOLUME, "window_start", LIVE_SPAN)
    windows = (
        src.fetch(db, src.LIVE_CATEGORY_VOLUME, fields, recent)
        if recent
        else pd.DataFrame(columns=fields)
    )
    rows_read = len(windows)
    notes = []
    if not windows.empty:
        windows["window_start"] = src.utc_naive(windows["window_start"])
        windows["window_end"] = src.utc_naive(windows["window_end"])
        # 1-minute windows slide every 20 s: those starting on the minute tile time without overlap.
        minute = (windows["window_end"] - windows["window_start"] == pd.Timedelta(minutes=1)) & (
            windows["window_start"].dt.second == 0
        )
        if minute.any():
            windows = windows[minute]
        else:
            notes.append("No window starts on a whole minute: all sliding windows are drawn.")
    return Chart(
        name="volume_live",
        title="Live transaction volume per minute by merchant category (last 3 h)",
        sources=(src.LIVE_CATEGORY_VOLUME,),
        rows_read=rows_read,
        notes=notes,
        panels=[
            Panel(
                "Transactions per minute",
                "line",
                windows,
                x="window_start",
                y="transaction_count",
                hue="merchant_category",
                legend_title="category",
                xlabel="Minute (UTC)",
                ylabel="Transactions per minute",
                source=src.LIVE_CATEGORY_VOLUME,
            ),
            Panel(
                "Amount per minute",
                "line",
                windows,
                x="window_start",
                y="total_amount",
                hue="merchant_category",
                legend_title="category",
                xlabel="Minute (UTC)",
                ylabel="Amount ({irr})",
                source=src.LIVE_CATEGORY_VOLUME,
                irr_column="total_amount",
            ),
        ],
    )
