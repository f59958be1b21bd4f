"""Merchants' business hours (Tehran local hours, open when open_hour <= hour < close_hour).

The hours come from the merchant reference the generator publishes with its transactions
(darooghe.merchant_reference), which the batch layer keeps as the `merchants` collection
(darooghe.batch.merchants). Only in-person payments are judged by them: online and mobile payments
reach a merchant's web shop or app at any hour. A merchant without a reference record has no known
hours, so its payments are not judged (`hours_source` = NO_REFERENCE) but reported.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from darooghe.merchant_reference import valid_hours
from darooghe.schema import DEVICE_PAYMENT_METHODS, PAYMENT_METHODS

#: pos and nfc: the methods that carry no device, paid at the shop
IN_PERSON_METHODS = tuple(m for m in PAYMENT_METHODS if m not in DEVICE_PAYMENT_METHODS)
REFERENCE = "merchant_reference"  # hours_source: the merchant's reference record
NO_REFERENCE = "no_reference"  # hours_source: no reference record, payments not judged


def register_frame(spark: SparkSession, merchants: list[dict]) -> DataFrame:
    """merchant_id, reference_category, open_hour, close_hour of the register's merchants."""
    rows = []
    for m in merchants:
        open_hour, close_hour = int(m["open_hour"]), int(m["close_hour"])
        if not valid_hours(open_hour, close_hour):
            raise ValueError(
                f"merchant register: {m['merchant_id']!r} has business hours "
                f"{open_hour}..{close_hour}, not 0 <= open < close <= 24"
            )
        rows.append((m["merchant_id"], m["merchant_category"], open_hour, close_hour))
    return spark.createDataFrame(
        rows, "merchant_id string, reference_category string, open_hour int, close_hour int"
    )
