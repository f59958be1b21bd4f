"""Live-metric records as the metrics job writes them, for the Kafka -> MongoDB sink tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from darooghe.schema import format_timestamp

T0 = datetime(2026, 3, 23, 14, 0, tzinfo=UTC)


def volume_value(
    minute: int,
    category: str = "retail",
    count: int = 3,
    metric_id: str | None = None,
    **extra,
) -> dict:
    """A category-volume value of the 1-minute window `minute` minutes after T0."""
    start = T0 + timedelta(minutes=minute)
    value = {
        "window_start": format_timestamp(start),
        "window_end": format_timestamp(start + timedelta(minutes=1)),
        "merchant_category": category,
        "transaction_count": count,
        "total_amount": count * 1000,
    }
    if metric_id:
        value["metric_id"] = metric_id
    return {**value, **extra}
