"""Spark reads Kafka through the connector resolved at the pyspark version (batch read)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pyspark
import pytest

from darooghe import spark_jars
from darooghe.kafka_io import produce_records
from darooghe.records import Record
from darooghe.spark import KAFKA_CONNECTOR, spark_config

pytestmark = [pytest.mark.integration, pytest.mark.spark]

#: Lines Ivy prints when it resolves packages at session start (its "resolution report").
IVY_MARKERS = (
    ":: resolving dependencies ::",
    "Ivy Default Cache",
    ":: loading settings ::",
    "confs: [default]",
)


def test_connector_matches_pyspark_version(settings):
    conf = spark_config(settings)
    assert KAFKA_CONNECTOR.endswith(f"_2.13:{pyspark.__version__}")
    assert "spark.jars.packages" not in conf and "spark.jars.ivy" not in conf
    jars = [Path(j) for j in conf["spark.jars"].split(",")]
    assert all(j.is_file() and j.parent == settings.build / "spark-jars" for j in jars)
    assert f"org.apache.spark_spark-sql-kafka-0-10_2.13-{pyspark.__version__}.jar" in {
        j.name for j in jars
    }
    assert conf["spark.pyspark.python"] == settings.python


def test_missing_jars_name_the_directory_and_make_install(settings, tmp_path):
    s = dataclasses.replace(settings, build=tmp_path)
    with pytest.raises(spark_jars.SparkJarsError) as err:
        spark_config(s)
    assert str(tmp_path / "spark-jars" / "manifest.json") in str(err.value)
    assert "make install" in str(err.value)


def test_jars_of_another_pyspark_version_are_refused(settings, tmp_path):
    folder = tmp_path / "spark-jars"
    folder.mkdir()
    stale = {"connector": "org.apache.spark:spark-sql-kafka-0-10_2.13:3.5.1", "jars": []}
    (folder / "manifest.json").write_text(json.dumps(stale))
    with pytest.raises(spark_jars.SparkJarsError, match=r"3\.5\.1.*expected.*make install"):
        spark_config(dataclasses.replace(settings, build=tmp_path))


def test_spark_batch_reads_a_topic(spark, stack, unique_topic):
    topic = unique_topic("spark-read", 2)
    produce_records(
        topic, [Record(f"k{i % 3}", f"v{i}", 1_700_000_000_000 + i) for i in range(50)], stack
    )
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


SESSION_SCRIPT = """
import sys
from darooghe.spark import spark_session
spark = spark_session("darooghe-quiet-start")
df = (spark.read.format("kafka").option("kafka.bootstrap.servers", sys.argv[1])
      .option("subscribe", sys.argv[2]).option("startingOffsets", "earliest").load())
print("rows", df.count())
spark.stop()
"""


def test_session_start_prints_no_ivy_report_and_reads_kafka(stack, unique_topic):
    """A fresh driver process (its own JVM): no Ivy resolution on its stdout or stderr."""
    topic = unique_topic("spark-quiet", 1)
    now_ms = int(time.time() * 1000)  # within the topic's retention
    produce_records(topic, [Record("k", f"v{i}", now_ms + i) for i in range(7)], stack)
    done = subprocess.run(
        [sys.executable, "-c", SESSION_SCRIPT, stack.kafka_bootstrap, topic],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "rows 7" in done.stdout
    assert not [m for m in IVY_MARKERS if m in output], output
    assert "spark-sql-kafka" not in done.stderr, done.stderr
