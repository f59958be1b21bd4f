"""The transaction event schema of `darooghe.transactions` (SPEC section 1): one definition.

Field order here is the order the generator writes and the validator normalises to.
"""

from __future__ import annotations

MERCHANT_CATEGORIES = ("retail", "food_service", "entertainment", "transportation", "government")
PAYMENT_METHODS = ("online", "pos", "mobile", "nfc")
STATUSES = ("approved", "declined", "pending")
COMMISSION_TYPES = ("flat", "progressive", "tiered")
CUSTOMER_TYPES = ("individual", "CIP", "business")
FAILURE_REASONS = ("cancelled", "insufficient_funds", "system_error", "fraud_prevented")
MOBILE_OSES = ("iOS", "Android")
#: payment methods that carry device_info {os, app_version, device_model}; others carry {}
DEVICE_PAYMENT_METHODS = ("online", "mobile")
RISK_LEVELS = (1, 2, 3, 4, 5)

FIELDS = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "merchant_id",
    "merchant_category",
    "payment_method",
    "amount",
    "location",
    "device_info",
    "status",
    "commission_type",
    "commission_amount",
    "vat_amount",
    "total_amount",
    "customer_type",
    "risk_level",
    "failure_reason",
)

# Validation error codes (SPEC section 3).
ERR_AMOUNT = "ERR_AMOUNT"
ERR_TIME = "ERR_TIME"
ERR_DEVICE = "ERR_DEVICE"
ERR_SCHEMA = "ERR_SCHEMA"
ERROR_CODES = (ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA)

# Fraud rules (SPEC section 4).
VELOCITY = "VELOCITY"
GEO_IMPOSSIBLE = "GEO_IMPOSSIBLE"
AMOUNT_ANOMALY = "AMOUNT_ANOMALY"
FRAUD_RULES = (VELOCITY, GEO_IMPOSSIBLE, AMOUNT_ANOMALY)
