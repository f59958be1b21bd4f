"""Commission and VAT: the one definition shared by the generator, the validator and the batch layer.

All amounts are integer IRR. Results are rounded half up to an integer, computed with integer
arithmetic so Python, Spark and tests agree to the rial.

- flat: 2% of the amount.
- progressive: marginal brackets — 1% of the part up to 500,000, 2% of the part from 500,000 to
  1,500,000, 3% of the part above 1,500,000.
- tiered: the whole amount at one rate chosen by its size — 2.5% below 500,000, 2% from 500,000 up
  to and including 1,500,000, 1.5% above.
- VAT: 9% of the amount.
"""

from __future__ import annotations

from darooghe.schema import COMMISSION_TYPES  # noqa: E402

__all__ = ["COMMISSION_TYPES", "commission", "vat", "total"]

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


def commission(commission_type: str, amount: int) -> int:
    """Commission in IRR collected by Darooghe on `amount` under `commission_type`."""
    if commission_type == "flat":
        return round_half_up(amount * FLAT_BP, BP)
    if commission_type == "progressive":
        return round_half_up(progressive_bp_amount(amount), BP)
    if commission_type == "tiered":
        return round_half_up(amount * tiered_rate_bp(amount), BP)
    raise ValueError(
        f"commission_type {commission_type!r} is not one of {', '.join(COMMISSION_TYPES)}"
    )


def vat(amount: int) -> int:
    return round_half_up(amount * VAT_BP, BP)


def total(amount: int, commission_amount: int, vat_amount: int) -> int:
    return amount + vat_amount + commission_amount
