"""Commission and VAT: the one definition shared by the generator, the validator and the batch layer.

All amounts are integer IRR. Results are rounded half up to an integer, computed with integer
arithmetic so Python, Spark and tests agree to the rial.

- flat: 2% of the amount.
- progressive: marginal brackets — 1% of the part up to 500,000, 2% of the part from 500,000 to
  1,500,000, 3% of the part above 1,500,000.
- tiered: the whole amount at one rate chosen by its size — 2.5% below 500,000, 2% from 500,000 up
  to and including 1,500,000, 1.5% above.
- VAT: 9% of the amount.

`commission_column` / `commission_column_by_type` / `vat_column` build the same formulas as Spark
Columns from the same constants, for the batch layer (tested equal to the Python functions).
"""

from __future__ import annotations

from darooghe.schema import COMMISSION_TYPES

__all__ = [
    "COMMISSION_TYPES",
    "commission",
    "commission_column",
    "commission_column_by_type",
    "total",
    "vat",
    "vat_column",
]

#: Rates are in basis points (1/10,000) so every figure is an integer.
FLAT_BP = 200
#: (upper bound of the bracket or None, marginal rate in bp)
PROGRESSIVE_BRACKETS: tuple[tuple[int | None, int], ...] = (
    (500_000, 100),
    (1_500_000, 200),
    (None, 300),
)
#: (amount strictly below / at most this bound, rate in bp) checked in order; the last is the rest.
TIERED_LOW_BOUND, TIERED_LOW_BP = 500_000, 250  # amount < 500,000
TIERED_MID_BOUND, TIERED_MID_BP = 1_500_000, 200  # 500,000 <= amount <= 1,500,000
TIERED_HIGH_BP = 150  # amount > 1,500,000
VAT_BP = 900

BP = 10_000


def round_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up, for numerator >= 0 and denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


def progressive_bp_amount(amount: int) -> int:
    """The progressive commission times 10,000 (exact, before rounding)."""
    total, lower = 0, 0
    for upper, rate in PROGRESSIVE_BRACKETS:
        top = amount if upper is None else min(amount, upper)
        if top > lower:
            total += (top - lower) * rate
        if upper is None or amount <= upper:
            break
        lower = upper
    return total


def tiered_rate_bp(amount: int) -> int:
    if amount < TIERED_LOW_BOUND:
        return TIERED_LOW_BP
    if amount <= TIERED_MID_BOUND:
        return TIERED_MID_BP
    return TIERED_HIGH_BP


def _commission_bp(commission_type: str, amount, lit, progressive, tiered_rate):
    """The commission in rial-basis-points (before rounding) of each structure, written once for
    Python ints and for Spark Columns: `lit`, `progressive` and `tiered_rate` are the kind's own."""
    if commission_type == "flat":
        return amount * lit(FLAT_BP)
    if commission_type == "progressive":
        return progressive(amount)
    if commission_type == "tiered":
        return amount * tiered_rate(amount)
    raise ValueError(
        f"commission_type {commission_type!r} is not one of {', '.join(COMMISSION_TYPES)}"
    )


def commission(commission_type: str, amount: int) -> int:
    """Commission in IRR collected by Darooghe on `amount` under `commission_type`."""
    numerator = _commission_bp(commission_type, amount, int, progressive_bp_amount, tiered_rate_bp)
    return round_half_up(numerator, BP)


def vat(amount: int) -> int:
    return round_half_up(amount * VAT_BP, BP)


def total(amount: int, commission_amount: int, vat_amount: int) -> int:
    return amount + vat_amount + commission_amount


# ------------------------------------------------------------------------------------------------
# The same formulas as Spark Columns, built from the constants above (used by the batch layer), so
# Spark and Python agree to the rial. pyspark is imported inside the functions: the generator and
# the validator import this module without Spark.
# ------------------------------------------------------------------------------------------------


def _round_half_up_column(numerator, denominator: int):
    """numerator / denominator rounded half up as a long Column, with integer arithmetic only."""
    from pyspark.sql import functions as F

    twice = numerator * F.lit(2) + F.lit(denominator)
    # Spark's integral division (SQL `div`), never a double: exact for every long. ANSI mode
    # raises on overflow, which needs amounts above 1.5e16 IRR (amount x 300 bp x 2).
    return F.call_function("div", twice, F.lit(2 * denominator)).cast("long")


def _progressive_bp_column(amount):
    from pyspark.sql import functions as F

    total, lower = F.lit(0).cast("long"), 0
    for upper, rate in PROGRESSIVE_BRACKETS:
        top = amount if upper is None else F.least(amount, F.lit(upper).cast("long"))
        total = total + F.greatest(top - F.lit(lower), F.lit(0).cast("long")) * F.lit(rate)
        if upper is None:
            break
        lower = upper
    return total


def _tiered_rate_column(amount):
    from pyspark.sql import functions as F

    return (
        F.when(amount < F.lit(TIERED_LOW_BOUND), F.lit(TIERED_LOW_BP))
        .when(amount <= F.lit(TIERED_MID_BOUND), F.lit(TIERED_MID_BP))
        .otherwise(F.lit(TIERED_HIGH_BP))
    )


def commission_column(commission_type: str, amount):
    """Spark Column: the commission of `amount` (a long Column) under a fixed `commission_type`."""
    from pyspark.sql import functions as F

    numerator = _commission_bp(
        commission_type, amount.cast("long"), F.lit, _progressive_bp_column, _tiered_rate_column
    )
    return _round_half_up_column(numerator, BP)


def commission_column_by_type(commission_type, amount):
    """Spark Column: the commission of `amount` under the type held in the `commission_type` Column
    (null for a type that is not one of COMMISSION_TYPES)."""
    from pyspark.sql import functions as F

    result = None
    for name in COMMISSION_TYPES:
        value = commission_column(name, amount)
        result = F.when(commission_type == name, value) if result is None else result.when(
            commission_type == name, value
        )
    return result


def vat_column(amount):
    """Spark Column: the VAT of `amount` (a long Column)."""
    from pyspark.sql import functions as F

    return _round_half_up_column(amount.cast("long") * F.lit(VAT_BP), BP)
