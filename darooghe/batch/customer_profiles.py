"""Customer profiles: one document per customer with at least one approved payment.

The streaming fraud job reads `avg_amount` as the customer's historical average (AMOUNT_ANOMALY), so
its scope is exact: the mean amount of the customer's approved transactions.
A customer without an approved payment has no profile (and, per the rule, is not judged).

- txn_count, total_amount, avg_amount: approved transactions;
- valid_txn_count: every valid transaction of the customer (volume);
- first_seen, last_seen: the first and last valid transaction (any status);
- home_city: the city (darooghe.generator.population.CITIES) the customer pays from most often,
  each payment placed in its nearest city — a payment made far from home does not move it;
- customer_type: of the customer's most recent transaction;
- segment: the RFM segment (darooghe.batch.customer_segments).
"""

from __future__ import annotations

import datetime as dt
import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import is_approved, ratio
from darooghe.batch.customer_segments import rfm
from darooghe.generator.population import CITIES

COLLECTION = mc.CUSTOMER_PROFILES
KEY = "customer_id"


def nearest_city(lat: Column, lng: Column) -> Column:
    """Column: the name of the city of CITIES nearest to (lat, lng) by great-circle distance.

    Cities are ranked by the haversine term a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2), which grows
    with the distance: the same order as darooghe.generator.population.nearest_city without the
    asin and sqrt, and cos φ1 once per row.
    """
    phi = F.radians(lat)
    cos_phi = F.cos(phi)
    lam = F.radians(lng)
    candidates = []
    for c in CITIES:
        c_phi, c_lam = math.radians(c.lat), math.radians(c.lng)
        a = F.pow(F.sin((phi - F.lit(c_phi)) / 2), 2) + cos_phi * F.lit(math.cos(c_phi)) * F.pow(
            F.sin((lam - F.lit(c_lam)) / 2), 2
        )
        candidates.append(F.struct(a.alias("a"), F.lit(c.name).alias("city")))
    return F.array_min(F.array(*candidates)).getField("city")


def home_cities(transactions: DataFrame) -> DataFrame:
    """customer_id, home_city: the city the customer pays from most often (ties: the later name)."""
    per_city = transactions.groupBy(
        "customer_id", nearest_city(F.col("location.lat"), F.col("location.lng")).alias("city")
    ).agg(F.count(F.lit(1)).alias("payments"))
    return per_city.groupBy("customer_id").agg(
        F.max(F.struct("payments", "city")).getField("city").alias("home_city")
    )


def customer_profiles(
    transactions: DataFrame,
    segments: DataFrame | None = None,
    reference_time: dt.datetime | None = None,
) -> DataFrame:
    """One row per customer with an approved payment (see module doc for the columns)."""
    per_customer = transactions.groupBy("customer_id").agg(
        F.sum(F.when(is_approved(), 1).otherwise(0)).alias("txn_count"),
        F.sum(F.when(is_approved(), F.col("amount")).otherwise(0)).alias("total_amount"),
        F.count(F.lit(1)).alias("valid_txn_count"),
        F.min("event_time").alias("first_seen"),
        F.max("event_time").alias("last_seen"),
        F.max_by("customer_type", "event_time").alias("customer_type"),
    )
    if segments is None:
        segments = rfm(transactions, reference_time)
    return (
        per_customer.where(F.col("txn_count") > 0)
        .withColumn("avg_amount", ratio(F.col("total_amount"), F.col("txn_count")))
        .join(home_cities(transactions), "customer_id", "left")
        .join(segments.select("customer_id", "segment"), "customer_id", "left")
        .select(
            "customer_id",
            "txn_count",
            "avg_amount",
            "total_amount",
            "valid_txn_count",
            "first_seen",
            "last_seen",
            "home_city",
            "customer_type",
            "segment",
        )
        .orderBy("customer_id")
    )
