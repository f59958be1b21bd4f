"""When people pay: transactions by weekday and hour of day, in Tehran local time."""

from __future__ import annotations

import calendar

import pandas as pd
from pymongo.database import Database

from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel

#: rows top to bottom: the Iranian week runs Saturday to Friday (the weekend)
WEEK_ORDER = (5, 6, 0, 1, 2, 3, 4)
HOURS = range(24)


def _matrix(patterns: pd.DataFrame, value: str) -> pd.DataFrame:
    if patterns.empty:
        return pd.DataFrame()
    table = patterns.pivot_table(
        index="day_of_week", columns="hour", values=value, aggfunc="sum", fill_value=0
    )
    table = table.reindex(index=list(WEEK_ORDER), columns=list(HOURS), fill_value=0)
    table.index = [calendar.day_name[d] for d in table.index]
    return table


def temporal_heatmap(db: Database) -> Chart:
    patterns = src.fetch(
        db, src.TEMPORAL_PATTERNS, ["day_of_week", "hour", "transaction_count", "total_amount"]
    )
    patterns = patterns.dropna(subset=["day_of_week", "hour"])
    if not patterns.empty:
        patterns = patterns.astype({"day_of_week": int, "hour": int})
    return Chart(
        name="temporal_heatmap",
        title="Transactions by weekday and hour (Asia/Tehran)",
        sources=(src.TEMPORAL_PATTERNS,),
        rows_read=len(patterns),
        columns=1,
        panels=[
            Panel(
                "Transactions",
                "heatmap",
                _matrix(patterns, "transaction_count"),
                xlabel="Hour of day (Tehran)",
                ylabel="Weekday",
                value_label="Transactions",
                source=src.TEMPORAL_PATTERNS,
            ),
            Panel(
                "Amount",
                "heatmap",
                _matrix(patterns, "total_amount"),
                xlabel="Hour of day (Tehran)",
                ylabel="Weekday",
                value_label="Amount ({irr})",
                source=src.TEMPORAL_PATTERNS,
                irr_column="total_amount",
            ),
        ],
    )
