"""Spark reads Kafka through the connector resolved at the pyspark version (batch read)."""

from __future__ import annotations

import pyspark
import pytest

from darooghe.kafka_io import produce_records
from darooghe.records import Record
from darooghe.spark import KAFKA_CONNECTOR, spark_config

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_connector_matches_pyspark_version(settings):
    conf = spark_config(settings)
    assert conf["spark.jars.packages"] == KAFKA_CONNECTOR
    assert KAFKA_CONNECTOR.endswith(f"_2.13:{pyspark.__version__}")
    assert conf["spark.jars.ivy"].startswith(str(settings.build))
    assert conf["spark.pyspark.python"] == settings.python


def test_spark_batch_reads_a_topic(spark, stack, unique_topic):
    topic = unique_topic("spark-read", 2)
    produce_records(topic, [Record(f"k{i % 3}", f"v{i}", 1_700_000_000_000 + i) for i in range(50)], stack)
    df = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", stack.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed")
        .load()
    )
    rows = df.selectExpr("CAST(key AS STRING) k", "CAST(value AS STRING) v", "timestamp").collect()
    assert len(rows) == 50
    assert sorted(r.v for r in rows) == sorted(f"v{i}" for i in range(50))
    assert {r.k for r in rows} == {"k0", "k1", "k2"}
