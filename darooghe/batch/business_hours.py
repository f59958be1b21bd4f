"""Merchants' business hours (Tehran local hours, open when open_hour <= hour < close_hour).

The merchant register is the generator's population (darooghe.generator.population): each merchant
has its own opening and closing hour there, drawn from its category's choices. The batch layer
builds the same population from the generator's parameters as the environment sets them (seed,
MERCHANT_COUNT, CUSTOMER_COUNT: darooghe.generator.params), exactly as `darooghe generate` does.

A merchant that register does not know (data generated with other parameters, or a real feed) gets
its category's default window: the widest the category allows, from its earliest opening to its
latest closing hour (population.BUSINESS_HOURS), so a payment is called off-hours only when no
merchant of that category would be open. `hours_source` says which applied.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from darooghe.generator.params import GeneratorParams, from_sources
from darooghe.generator.population import BUSINESS_HOURS

GENERATOR = "generator"
CATEGORY_DEFAULT = "category_default"


def category_default_hours() -> dict[str, tuple[int, int]]:
    """category -> (open_hour, close_hour): the widest window of the category."""
    return {cat: (min(opens), max(closes)) for cat, (opens, closes) in BUSINESS_HOURS.items()}


def generator_merchants(params: GeneratorParams | None = None) -> list[dict]:
    """The generator's merchants (merchant_id, merchant_category, open_hour, close_hour, ...)."""
    from darooghe.generator.engine import Engine

    params = params if params is not None else from_sources({})
    return Engine(params).population.merchants()


def merchant_hours_frame(spark: SparkSession, merchants: list[dict]) -> DataFrame:
    rows = [(m["merchant_id"], int(m["open_hour"]), int(m["close_hour"])) for m in merchants]
    return spark.createDataFrame(rows, "merchant_id string, open_hour int, close_hour int")


def category_hours_frame(spark: SparkSession) -> DataFrame:
    rows = [(cat, o, c) for cat, (o, c) in sorted(category_default_hours().items())]
    return spark.createDataFrame(
        rows, "merchant_category string, default_open_hour int, default_close_hour int"
    )
