"""What went wrong: fraud alerts by rule, fraud decisions (REVIEW/BLOCK) and validation errors by
code, over time."""

from __future__ import annotations

import pandas as pd
from pymongo.database import Database

from darooghe import schema
from darooghe.charts import sources as src
from darooghe.charts.model import Chart, Panel, time_bucket
from darooghe.fraud.ruleset import BLOCK, REVIEW


def _bucket_label(bucket: pd.Timedelta) -> str:
    hours = int(bucket / pd.Timedelta(hours=1))
    return {1: "hour", 6: "6 hours", 24: "day", 168: "week"}.get(hours, f"{hours} h")


def _over_time(frame: pd.DataFrame, time_col: str, group_col: str, count_col: str | None):
    """(counts per time bucket and group, bucket): buckets sized to the span of the data."""
    bucket = time_bucket(frame[time_col])
    if frame.empty:
        return pd.DataFrame(columns=["period", group_col, "count"]), bucket
    periods = frame.assign(period=frame[time_col].dt.floor(bucket))
    if count_col:
        counts = periods.groupby(["period", group_col])[count_col].sum()
    else:
        counts = periods.groupby(["period", group_col]).size()
    return counts.reset_index(name="count"), bucket


def _totals(frame: pd.DataFrame, group_col: str, count_col: str | None, order: tuple[str, ...]):
    if frame.empty:
        return pd.DataFrame(columns=[group_col, "count"])
    totals = (
        frame.groupby(group_col)[count_col].sum() if count_col else frame.groupby(group_col).size()
    )
    known = [g for g in order if g in totals.index]
    ordered = known + sorted(g for g in totals.index if g not in known)
    return totals.reindex(ordered).reset_index(name="count")


def fraud_alerts(db: Database) -> Chart:
    alerts = src.fetch(db, src.FRAUD_ALERTS, ["rule", "event_time"]).dropna()
    if not alerts.empty:
        alerts["event_time"] = src.utc_naive(alerts["event_time"])
    over_time, bucket = _over_time(alerts, "event_time", "rule", None)
    per = _bucket_label(bucket)
    return Chart(
        name="fraud_alerts",
        title="Fraud alerts by rule",
        sources=(src.FRAUD_ALERTS,),
        rows_read=len(alerts),
        panels=[
            Panel(
                f"Alerts per {per} (event time)",
                "timebar",
                over_time,
                x="period",
                y="count",
                hue="rule",
                legend_title="rule",
                xlabel="Event time (UTC)",
                ylabel=f"Alerts per {per}",
                source=src.FRAUD_ALERTS,
                bucket=bucket,
            ),
            Panel(
                "Alerts by rule, all time",
                "bar",
                _totals(alerts, "rule", None, schema.FRAUD_RULES),
                x="rule",
                y="count",
                hue="rule",
                xlabel="Rule",
                ylabel="Alerts",
                source=src.FRAUD_ALERTS,
            ),
        ],
    )


def fraud_decisions(db: Database) -> Chart:
    """REVIEW and BLOCK decisions (one per alerted transaction) per hour of event time."""
    decisions = src.fetch(db, src.FRAUD_DECISIONS, ["decision", "event_time", "score"]).dropna()
    if not decisions.empty:
        decisions["event_time"] = src.utc_naive(decisions["event_time"])
    over_time, bucket = _over_time(decisions, "event_time", "decision", None)
    per = _bucket_label(bucket)
    totals = _totals(decisions, "decision", None, (REVIEW, BLOCK))
    counts = ", ".join(f"{r.decision} {int(r.count):,}" for r in totals.itertuples())
    return Chart(
        name="fraud_decisions",
        title="Fraud decisions: REVIEW and BLOCK",
        sources=(src.FRAUD_DECISIONS,),
        rows_read=len(decisions),
        notes=[f"Transactions decided: {counts or 'none'} (APPROVE is not stored)."],
        panels=[
            Panel(
                f"Decisions per {per} (event time)",
                "timebar",
                over_time,
                x="period",
                y="count",
                hue="decision",
                legend_title="decision",
                xlabel="Event time (UTC)",
                ylabel=f"Decisions per {per}",
                source=src.FRAUD_DECISIONS,
                bucket=bucket,
            ),
            Panel(
                "Decisions, all time",
                "bar",
                totals,
                x="decision",
                y="count",
                hue="decision",
                xlabel="Decision",
                ylabel="Transactions",
                source=src.FRAUD_DECISIONS,
            ),
        ],
    )


def validation_errors(db: Database) -> Chart:
    summary = src.fetch(db, src.ERROR_SUMMARY, ["code", "hour", "count"]).dropna()
    if not summary.empty:
        summary["hour"] = src.utc_naive(summary["hour"])
    over_time, bucket = _over_time(summary, "hour", "code", "count")
    per = _bucket_label(bucket)
    return Chart(
        name="validation_errors",
        title="Validation errors by code",
        sources=(src.ERROR_SUMMARY,),
        rows_read=len(summary),
        notes=["A record with several violations counts once under each of its codes."],
        panels=[
            Panel(
                "Invalid records by error code, all time",
                "bar",
                _totals(summary, "code", "count", schema.ERROR_CODES),
                x="code",
                y="count",
                hue="code",
                xlabel="Error code",
                ylabel="Invalid records",
                source=src.ERROR_SUMMARY,
            ),
            Panel(
                f"Invalid records per {per}",
                "timebar",
                over_time,
                x="period",
                y="count",
                hue="code",
                legend_title="error code",
                xlabel="Arrival time (UTC)",
                ylabel=f"Invalid records per {per}",
                source=src.ERROR_SUMMARY,
                bucket=bucket,
            ),
        ],
    )
