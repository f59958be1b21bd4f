"""Hand-built transactions for the batch-layer tests: lake rows and Kafka values from short specs.

Commission and VAT come from darooghe.commission (the recorded commission of a transaction is what
its contracted type gives), so a test states only what it is about.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from darooghe import commission as cm
from darooghe.batch.lake import lake_schema
from darooghe.schema import FIELDS, format_timestamp

UTC = dt.UTC
CITY = {
    "Tehran": (35.6892, 51.3890),
    "Shiraz": (29.5918, 52.5837),
    "Tabriz": (38.0962, 46.2738),
    "Mashhad": (36.2605, 59.6168),
}


def utc(text: str) -> dt.datetime:
    """ "2026-03-23T05:00:00" (UTC) -> aware datetime."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def txn(
    when: dt.datetime | str,
    *,
    tid: str | None = None,
    customer: str = "cust_1",
    merchant: str = "merch_1",
    category: str = "retail",
    method: str = "pos",
    amount: int = 100_000,
    status: str = "approved",
    ctype: str = "flat",
    city: str = "Tehran",
    customer_type: str = "individual",
    risk: int = 1,
    commission_amount: int | None = None,
) -> dict:
    """One valid transaction as a dict of event fields (plus event_time)."""
    when = utc(when) if isinstance(when, str) else when
    commission = cm.commission(ctype, amount) if commission_amount is None else commission_amount
    vat = cm.vat(amount)
    lat, lng = CITY[city]
    device = (
        {"os": "Android", "app_version": "2.4.1", "device_model": "Pixel 9"}
        if method in ("online", "mobile")
        else {}
    )
    return {
        "transaction_id": tid
        or str(
            uuid.uuid5(
                uuid.NAMESPACE_OID,
                f"{when.isoformat()}|{customer}|{merchant}|{amount}|{status}|{method}",
            )
        ),
        "timestamp": format_timestamp(when),
        "customer_id": customer,
        "merchant_id": merchant,
        "merchant_category": category,
        "payment_method": method,
        "amount": amount,
        "location": {"lat": lat, "lng": lng},
        "device_info": device,
        "status": status,
        "commission_type": ctype,
        "commission_amount": commission,
        "vat_amount": vat,
        "total_amount": amount + vat + commission,
        "customer_type": customer_type,
        "risk_level": risk,
        "failure_reason": "insufficient_funds" if status == "declined" else None,
        "event_time": when,
    }


def value_json(t: dict) -> str:
    """The Kafka value of a transaction: the normalised transaction JSON (darooghe.schema)."""
    return json.dumps({k: t[k] for k in FIELDS}, separators=(",", ":"))


def lake_frame(spark, txns: list[dict], partitions: int = 1):
    """A DataFrame shaped like the lake (lake_schema()) holding `txns`."""
    rows = []
    for i, t in enumerate(txns):
        device = t["device_info"]
        rows.append(
            (
                *(t[k] for k in FIELDS[:7]),
                (t["location"]["lat"], t["location"]["lng"]),
                (device.get("os"), device.get("app_version"), device.get("device_model")),
                *(t[k] for k in FIELDS[9:]),
                t["event_time"],
                i % partitions,
                i,
                t["event_time"],
                t["event_time"].strftime("%Y-%m-%d"),
            )
        )
    return spark.createDataFrame(rows, lake_schema())
