"""Test data for the charts and sinks: a small, deterministic set of MongoDB documents shaped like
the collections the charts read, and a scratch database to put them in.

Shapes follow the cross-helper contracts (batch layer, streaming layer, sinks). Shared by the chart
and sink tests of darooghe_tests/ and darooghe_assets_tests/. The scratch database is private to
one test module, so tests of other areas emptying the shared test database cannot race with it.
"""

from __future__ import annotations

import io
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

from darooghe import commission, schema
from darooghe.schema import format_timestamp

MERCHANTS = [f"merch_{i}" for i in range(1, 13)]
CUSTOMERS = [f"cust_{i}" for i in range(1, 41)]
SEGMENTS = ("Champions", "Loyal", "At risk", "New")


def _transactions(rng: random.Random, now: datetime, n: int) -> list[dict]:
    docs = []
    for i in range(n):
        t = now - timedelta(minutes=rng.randrange(0, 24 * 60))
        t = t.replace(microsecond=(t.microsecond // 1000) * 1000)
        amount = rng.randrange(50_000, 3_000_000)
        ctype = rng.choice(schema.COMMISSION_TYPES)
        status = rng.choices(schema.STATUSES, weights=(90, 6, 4))[0]
        fee, vat = commission.commission(ctype, amount), commission.vat(amount)
        # A few merchants are much busier, so the top-5 ranking is unambiguous.
        merchant = MERCHANTS[min(int(rng.expovariate(0.35)), len(MERCHANTS) - 1)]
        docs.append(
            {
                "_id": str(uuid.UUID(int=rng.getrandbits(128))),
                "transaction_id": f"t{i}",
                "timestamp": format_timestamp(t),
                "customer_id": rng.choice(CUSTOMERS),
                "merchant_id": merchant,
                "merchant_category": rng.choice(schema.MERCHANT_CATEGORIES),
                "payment_method": rng.choice(schema.PAYMENT_METHODS),
                "amount": amount,
                "location": {"lat": 35.7, "lng": 51.4},
                "device_info": {},
                "status": status,
                "commission_type": ctype,
                "commission_amount": fee,
                "vat_amount": vat,
                "total_amount": commission.total(amount, fee, vat),
                "customer_type": rng.choice(schema.CUSTOMER_TYPES),
                "risk_level": rng.randint(1, 5),
                "failure_reason": "cancelled" if status == "declined" else None,
                "event_time": t,
                "event_date": t.strftime("%Y-%m-%d"),
                "event_hour": t.hour,
                "ingested_at": now,
            }
        )
    return docs


def chart_documents(
    now: datetime | None = None, transactions: int = 400, seed: int = 7
) -> dict[str, list[dict]]:
    """collection name -> documents."""
    rng = random.Random(seed)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    txns = _transactions(rng, now, transactions)
    today = now.replace(hour=0, minute=0)
    docs: dict[str, list[dict]] = {"transactions": txns}

    docs["spending_trend"] = [
        {
            "_id": f"day|{(today - timedelta(days=d)).date()}",
            "period": "day",
            "period_start": today - timedelta(days=d),
            "transaction_count": 140_000 + rng.randrange(20_000),
            "total_amount": 9e10 + rng.randrange(10**10),
            "growth": None if d == 6 else 0.01,
        }
        for d in range(7)
    ] + [
        {
            "_id": "week|2026-W12",
            "period": "week",
            "period_start": today - timedelta(days=7),
            "transaction_count": 1_000_000,
            "total_amount": 6e11,
            "growth": None,
        }
    ]

    profiles, segments = [], []
    for i, cust in enumerate(CUSTOMERS):
        count = rng.randint(1, 60)
        first = now - timedelta(days=rng.uniform(0.5, 7))
        last = first + (now - first) * rng.random()
        avg = rng.uniform(200_000, 1_500_000)
        segment = SEGMENTS[i % len(SEGMENTS)]
        profiles.append(
            {
                "_id": cust,
                "customer_id": cust,
                "txn_count": count,
                "avg_amount": avg,
                "total_amount": int(avg * count),
                "first_seen": first,
                "last_seen": last,
                "home_city": "Tehran",
                "segment": segment,
                "updated_at": now,
            }
        )
        segments.append(
            {
                "_id": cust,
                "customer_id": cust,
                "recency_days": (now - last).total_seconds() / 86400,
                "frequency": count,
                "monetary": int(avg * count),
                "r_score": 3,
                "f_score": 3,
                "m_score": 3,
                "segment": segment,
            }
        )
    docs["customer_profiles"] = profiles
    docs["customer_segments"] = segments
    docs["segment_summary"] = [
        {
            "_id": s,
            "segment": s,
            "customers": sum(1 for d in segments if d["segment"] == s),
            "avg_recency_days": 2.0,
            "avg_frequency": 20.0,
            "avg_monetary": sum(d["monetary"] for d in segments if d["segment"] == s) / 10,
        }
        for s in SEGMENTS
    ]

    docs["commission_by_category"] = []
    for cat in schema.MERCHANT_CATEGORIES:
        count = rng.randint(50_000, 200_000)
        amount = count * rng.randint(600_000, 900_000)
        fee = int(amount * rng.uniform(0.015, 0.025))
        docs["commission_by_category"].append(
            {
                "_id": cat,
                "merchant_category": cat,
                "transaction_count": count,
                "total_amount": amount,
                "total_commission": fee,
                "avg_commission": fee / count,
                "commission_ratio": fee / amount,
            }
        )

    docs["temporal_patterns"] = [
        {
            "_id": f"{dow}-{hour}",
            "day_of_week": dow,
            "day_name": (
                "Monday",
                "Tuesday",
                "Wednesday",
                "Thursday",
                "Friday",
                "Saturday",
                "Sunday",
            )[dow],
            "hour": hour,
            "transaction_count": int(
                1000 * (1.5 if 10 <= hour <= 20 else 0.4) * (0.6 if dow == 4 else 1)
            ),
            "total_amount": 7e8 * (1.5 if 10 <= hour <= 20 else 0.4),
        }
        for dow in range(7)
        for hour in range(24)
    ]

    alerts = []
    for i in range(30):
        t = now - timedelta(minutes=rng.randrange(0, 36 * 60))
        rule = schema.FRAUD_RULES[i % 3]
        alerts.append(
            {
                "_id": f"alert-{i}",
                "alert_id": f"alert-{i}",
                "rule": rule,
                "transaction_id": f"t{i}",
                "customer_id": rng.choice(CUSTOMERS),
                "event_time": t,
                "detected_at": t + timedelta(seconds=5),
                "evidence": {"count": 6},
                "severity": "high",
                "event_date": t.strftime("%Y-%m-%d"),
                "event_hour": t.hour,
            }
        )
    docs["fraud_alerts"] = alerts

    hour0 = now.replace(minute=0)
    docs["error_summary"] = [
        {
            "_id": f"{code}|{format_timestamp(hour0 - timedelta(hours=h))}",
            "code": code,
            "hour": hour0 - timedelta(hours=h),
            "count": rng.randint(1, 40),
        }
        for h in range(12)
        for code in schema.ERROR_CODES
        if rng.random() < 0.8
    ]

    minute0 = now - timedelta(minutes=30)
    docs["live_category_volume"] = []
    docs["live_commission_ratio"] = []
    for m in range(30):
        for slide in (0, 20, 40):
            start = minute0 + timedelta(minutes=m, seconds=slide)
            for cat in schema.MERCHANT_CATEGORIES:
                count = rng.randint(5, 40)
                amount = count * 800_000
                fee = int(amount * rng.uniform(0.015, 0.025))
                window = {
                    "window_start": start,
                    "window_end": start + timedelta(minutes=1),
                    "merchant_category": cat,
                }
                docs["live_category_volume"].append(
                    {
                        "_id": f"v|{format_timestamp(start)}|{cat}",
                        **window,
                        "transaction_count": count,
                        "total_amount": amount,
                    }
                )
                docs["live_commission_ratio"].append(
                    {
                        "_id": f"r|{format_timestamp(start)}|{cat}",
                        **window,
                        "total_commission": fee,
                        "total_amount": amount,
                        "commission_ratio": fee / amount,
                    }
                )
    docs["live_commission_by_type"] = [
        {
            "_id": f"c|{m}|{ctype}",
            "window_start": minute0 + timedelta(minutes=m),
            "window_end": minute0 + timedelta(minutes=m + 1),
            "commission_type": ctype,
            "total_commission": rng.randint(200_000, 900_000),
            "transaction_count": rng.randint(10, 40),
        }
        for m in range(30)
        for ctype in schema.COMMISSION_TYPES
    ]
    docs["live_top_merchants"] = []
    for w in range(2):
        start = now - timedelta(minutes=10 - 5 * w)
        for rank in range(1, 6):
            docs["live_top_merchants"].append(
                {
                    "_id": f"{format_timestamp(start)}|"
                    f"{format_timestamp(start + timedelta(minutes=5))}|{rank}",
                    "window_start": start,
                    "window_end": start + timedelta(minutes=5),
                    "rank": rank,
                    "merchant_id": MERCHANTS[rank + w],
                    "total_commission": 1_000_000 // rank,
                    "transaction_count": 50 // rank,
                }
            )
    return docs


def rollups(spark, transactions: list[dict]) -> dict[str, list[dict]]:
    """The hourly rollup documents of `transactions`, by the storage layer's own Spark code."""
    import pandas as pd

    from darooghe.batch.transactions_store import ACTIVITY, HOURLY, hourly_rollups

    columns = ["event_time", "customer_id", "merchant_id", "merchant_category", "status", "amount",
               "commission_type", "commission_amount"]
    hourly, activity = hourly_rollups(spark.createDataFrame(pd.DataFrame(transactions)[columns]))
    return {HOURLY: hourly, ACTIVITY: activity}


def seed(db, spark, now: datetime | None = None, transactions: int = 400) -> dict[str, list[dict]]:
    """Insert the documents into `db`, replacing those collections, with the hourly rollups the
    storage layer computes from the transactions (by the same Spark code); returns what was inserted."""
    docs = chart_documents(now, transactions)
    docs.update(rollups(spark, docs["transactions"]))
    for name, documents in docs.items():
        db.drop_collection(name)
        db[name].insert_many(documents)
    return docs


@contextmanager
def scratch_database(settings) -> Iterator:
    """A database of its own on the test FerretDB, dropped afterwards (for a module-scoped fixture)."""
    from pymongo import MongoClient

    client = MongoClient(settings.mongo_uri, tz_aware=True)
    name = f"darooghe_test_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


def assert_real_picture(png: bytes, min_size: int = 10_000) -> Image.Image:
    """A decodable PNG of a sensible size that is not one flat colour."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > min_size
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.width >= 800 and image.height >= 400
    assert np.asarray(image).std() > 5
    return image
