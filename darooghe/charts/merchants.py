"""The top merchants: by transaction count and by commission (last 24 h), and the live ranking."""

from __future__ import annotations

import pandas as pd
from pymongo.database import Database

from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel

TOP = 5


def top_merchants(db: Database) -> Chart:
    hourly = src.window_rollup(db, src.TRANSACTIONS_HOURLY, ["merchant_id", "transactions", "commission"])
    per_merchant = hourly.dropna(subset=["merchant_id"]).groupby("merchant_id")[["transactions", "commission"]].sum()
    by_count = src.top(per_merchant["transactions"], TOP, "transactions")
    # The rollup's commission counts approved payments only: a declined payment collects none.
    by_commission = src.top(per_merchant["commission"], TOP, "commission")
    return Chart(
        name="top_merchants",
        title=f"Top {TOP} merchants, last 24 h",
        sources=(src.TRANSACTIONS_HOURLY,),
        rows_read=len(hourly),
        panels=[
            Panel(
                f"Top {TOP} by transaction count",
                "barh",
                by_count,
                x="transactions",
                y="merchant_id",
                xlabel="Transactions (all valid)",
                ylabel="Merchant",
                source=src.TRANSACTIONS_HOURLY,
            ),
            Panel(
                f"Top {TOP} by commission",
                "barh",
                by_commission,
                x="commission",
                y="merchant_id",
                xlabel="Commission on approved payments ({irr})",
                ylabel="Merchant",
                source=src.TRANSACTIONS_HOURLY,
                irr_column="commission",
            ),
        ],
    )


def top_merchants_live(db: Database) -> Chart:
    fields = [
        "window_start",
        "window_end",
        "rank",
        "merchant_id",
        "total_commission",
        "transaction_count",
    ]
    newest = db[src.LIVE_TOP_MERCHANTS].find_one(
        {}, {"window_start": 1, "window_end": 1}, sort=[("window_start", -1)]
    )
    ranking = pd.DataFrame(columns=fields)
    title = f"Live top {TOP} merchants by commission (latest 5-minute window)"
    if newest:
        window = {"window_start": newest["window_start"], "window_end": newest["window_end"]}
        ranking = src.fetch(db, src.LIVE_TOP_MERCHANTS, fields, window, sort=[("rank", 1)])
        start, end = (
            pd.Timestamp(newest[k]).strftime("%Y-%m-%d %H:%M")
            for k in ("window_start", "window_end")
        )
        title = f"Live top {TOP} merchants by commission, window {start} to {end[-5:]} UTC"
    return Chart(
        name="top_merchants_live",
        title=title,
        sources=(src.LIVE_TOP_MERCHANTS,),
        rows_read=len(ranking),
        panels=[
            Panel(
                "Commission in the window",
                "barh",
                ranking,
                x="total_commission",
                y="merchant_id",
                xlabel="Commission ({irr})",
                ylabel="Merchant (rank order)",
                source=src.LIVE_TOP_MERCHANTS,
                irr_column="total_commission",
            ),
            Panel(
                "Transactions in the window",
                "barh",
                ranking,
                x="transaction_count",
                y="merchant_id",
                xlabel="Transactions",
                ylabel="Merchant (rank order)",
                source=src.LIVE_TOP_MERCHANTS,
            ),
        ],
    )
