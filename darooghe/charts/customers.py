"""Customers: how active they are, how often they come back, how many are new, and their segments."""

from __future__ import annotations

import pandas as pd
from pymongo.database import Database

from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel

DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
#: customers drawn in the recency/frequency scatter (enough to see the segments' shapes)
SCATTER_SAMPLE = 2000


def user_activity(db: Database) -> Chart:
    profiles = src.fetch(
        db, src.CUSTOMER_PROFILES, ["customer_id", "txn_count", "first_seen", "last_seen"]
    )
    profiles = profiles.dropna(subset=["txn_count"])
    activity = src.window_rollup(db, src.ACTIVITY_HOURLY, ["active_customers"])
    per_customer, per_customer_source = profiles[["txn_count"]], src.CUSTOMER_PROFILES

    gaps = pd.DataFrame(columns=["hours_between"])
    new_per_day = pd.DataFrame(columns=["day", "new_customers"])
    seen = profiles.dropna(subset=["first_seen", "last_seen"])
    if not seen.empty:
        first, last = src.utc_naive(seen["first_seen"]), src.utc_naive(seen["last_seen"])
        repeat = seen["txn_count"] >= 2
        span_hours = (last - first).dt.total_seconds() / 3600
        gaps = pd.DataFrame(
            {"hours_between": (span_hours[repeat] / (seen["txn_count"][repeat] - 1))}
        )
        new_per_day = (
            first.dt.floor("D").value_counts().rename_axis("day").reset_index(name="new_customers")
        )

    active = activity[["hour", "active_customers"]]

    return Chart(
        name="user_activity",
        title="Customer activity",
        sources=(src.CUSTOMER_PROFILES, src.ACTIVITY_HOURLY),
        rows_read=len(profiles) + len(activity),
        panels=[
            Panel(
                "Transactions per customer",
                "hist",
                per_customer,
                x="txn_count",
                xlabel="Approved transactions of a customer",
                ylabel="Customers",
                source=per_customer_source,
            ),
            Panel(
                "Activity frequency: mean time between a customer's transactions",
                "hist",
                gaps,
                x="hours_between",
                xlabel="Hours between transactions (customer mean)",
                ylabel="Customers",
                source=src.CUSTOMER_PROFILES,
            ),
            Panel(
                "New customers per day (first transaction)",
                "timebar",
                new_per_day,
                x="day",
                y="new_customers",
                xlabel="Day (UTC)",
                ylabel="New customers",
                source=src.CUSTOMER_PROFILES,
                bucket=DAY,
            ),
            Panel(
                "Active customers per hour, last 24 h",
                "timebar",
                active,
                x="hour",
                y="active_customers",
                xlabel="Hour (UTC)",
                ylabel="Distinct customers",
                source=src.ACTIVITY_HOURLY,
                bucket=HOUR,
            ),
        ],
    )


def customer_segments(db: Database) -> Chart:
    summary = src.fetch(db, src.SEGMENT_SUMMARY, ["segment", "customers", "avg_monetary"])
    summary_source = src.SEGMENT_SUMMARY
    if summary.empty:
        summary = src.grouped(
            db, src.CUSTOMER_SEGMENTS, "segment", {"customers": 1, "monetary": "monetary"}
        )
        summary["avg_monetary"] = summary["monetary"] / summary["customers"].where(
            summary["customers"] > 0
        )
        summary_source = f"{src.SEGMENT_SUMMARY} and {src.CUSTOMER_SEGMENTS}"
    summary = summary.sort_values("customers", ascending=False)
    points = src.fetch(
        db,
        src.CUSTOMER_SEGMENTS,
        ["segment", "recency_days", "frequency", "monetary"],
        limit=SCATTER_SAMPLE,
    ).dropna(subset=["recency_days", "frequency"])
    return Chart(
        name="customer_segments",
        title="Customer segments (recency, frequency, monetary)",
        sources=(src.CUSTOMER_SEGMENTS, src.SEGMENT_SUMMARY),
        rows_read=len(summary) + len(points),
        panels=[
            Panel(
                "Customers per segment",
                "bar",
                summary,
                x="segment",
                y="customers",
                hue="segment",
                xlabel="Segment",
                ylabel="Customers",
                source=summary_source,
            ),
            Panel(
                "Average spend per customer",
                "bar",
                summary,
                x="segment",
                y="avg_monetary",
                hue="segment",
                xlabel="Segment",
                ylabel="Approved spend per customer ({irr})",
                source=summary_source,
                irr_column="avg_monetary",
            ),
            Panel(
                f"Recency and frequency (up to {SCATTER_SAMPLE} customers)",
                "scatter",
                points,
                x="recency_days",
                y="frequency",
                hue="segment",
                legend_title="segment",
                xlabel="Days since last transaction",
                ylabel="Transactions",
                source=src.CUSTOMER_SEGMENTS,
            ),
        ],
    )
