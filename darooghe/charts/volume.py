"""Transaction volume over time: the history (days and the last 24 hours) and the live minutes."""

from __future__ import annotations

import pandas as pd
from pymongo.database import Database

from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
#: how much of the live metrics the live chart shows
LIVE_SPAN = pd.Timedelta(hours=3)


def volume_history(db: Database) -> Chart:
    daily = src.fetch(
        db,
        src.SPENDING_TREND,
        ["period_start", "transaction_count", "total_amount"],
        {"period": "day"},
    )
    daily_source = src.SPENDING_TREND
    txns = src.with_hour(
        src.fetch(db, src.TRANSACTIONS, ["event_date", "event_hour", "status", "amount"])
    )
    approved = txns[txns["status"] == "approved"]
    # Volume counts every valid transaction; spending only approved ones (SPEC section 5).
    hourly = txns.groupby(["hour", "status"]).size().reset_index(name="transaction_count")
    hourly_amount = approved.groupby("hour")["amount"].sum().reset_index()
    if daily.empty:
        # Before the batch layer has run, the detailed last-24h transactions still give a day or two.
        daily = (
            pd.DataFrame(
                {
                    "transaction_count": txns.groupby(txns["hour"].dt.floor("D")).size(),
                    "total_amount": approved.groupby(approved["hour"].dt.floor("D"))[
                        "amount"
                    ].sum(),
                }
            )
            .fillna(0)
            .rename_axis("period_start")
            .reset_index()
        )
        daily_source = f"{src.SPENDING_TREND} and {src.TRANSACTIONS}"
    else:
        daily["period_start"] = src.utc_naive(daily["period_start"])
    return Chart(
        name="volume_history",
        title="Transaction volume over time (history)",
        sources=(src.SPENDING_TREND, src.TRANSACTIONS),
        rows_read=len(daily) + len(txns),
        panels=[
            Panel(
                "Transactions per day",
                "timebar",
                daily,
                x="period_start",
                y="transaction_count",
                xlabel="Day (UTC)",
                ylabel="Transactions per day",
                source=daily_source,
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
                source=daily_source,
                bucket=DAY,
                irr_column="total_amount",
            ),
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
                source=src.TRANSACTIONS,
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
                source=src.TRANSACTIONS,
                bucket=HOUR,
                irr_column="amount",
            ),
        ],
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
