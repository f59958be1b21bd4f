"""JSON parsed once per record: the fraud job's and the lake's parse, with their null filters."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from darooghe.batch.lake import parse_records, to_lake_rows
from darooghe.streaming.sources import FRAUD_FIELDS_SCHEMA, parse_transactions
from darooghe_tests.batch_data import txn, value_json

pytestmark = [pytest.mark.spark]

GOOD = (
    '{"transaction_id":"a","customer_id":"c","timestamp":"2026-01-01T00:00:00.000Z",'
    '"amount":5,"location":{"lat":1.0,"lng":2.0},"risk_level":2}'
)
#: What the validated topic should never hold, each dropped by the null checks, never an error.
BAD = ["not json", None, "{}", '{"transaction_id":"x"}', "[1,2]", '{"customer_id":"c"}']


def parses(df) -> int:
    """from_json calls in the executed plan."""
    return df._jdf.queryExecution().executedPlan().toString().count("from_json(")


def test_transactions_are_parsed_once_and_unparsable_values_dropped(spark):
    values = [(v,) for v in [GOOD, *BAD]]
    records = spark.createDataFrame(values, "value string").withColumn(
        "record_time", F.current_timestamp()
    )
    parsed = parse_transactions(records, FRAUD_FIELDS_SCHEMA)
    # Before spark_json: the null filter was pushed below the projection with a from_json in
    # each of its three checks, 4 parses per record.
    assert parses(parsed) == 1
    rows = parsed.select("transaction_id", "customer_id", "amount", "location.lat", "risk_level")
    assert [tuple(r) for r in rows.collect()] == [("a", "c", 5, 1.0, 2)]


def test_lake_rows_are_parsed_once_and_every_record_is_counted(spark):
    good = value_json(txn("2026-01-01T00:00:00Z"))
    values = [(v, 0, i) for i, v in enumerate([good, *BAD])]
    records = (
        spark.createDataFrame(values, "value string, partition int, offset long")
        .withColumn("value", F.col("value").cast("binary"))
        .withColumn("timestamp", F.current_timestamp())
    )
    parsed = parse_records(records)
    assert parses(to_lake_rows(parsed)) == 1
    # One row per record in, parsed or not: the lake counts what it leaves out.
    flags = sorted((r.kafka_offset, r.parsed) for r in parsed.collect())
    assert flags == [(0, True)] + [(i, False) for i in range(1, len(BAD) + 1)]
    assert [r.kafka_offset for r in to_lake_rows(parsed).collect()] == [0]
