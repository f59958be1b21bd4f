"""Where the streaming jobs read valid transactions: Kafka, or record files replayed in name order.

Both sources give the same columns — `key`, `value` (strings) and `record_time` (timestamp) — and
everything downstream (parsing, watermark, state) is the very same query, which is what makes the
file mode the way tests replay exact scenarios.

The file source is a Python streaming data source rather than Spark's file source because the file
source orders files by modification time, not by name: here the offset is the name of the last file
read, each micro-batch reads the next file in name order (`ReadMaxFiles(1)`), and the availableNow
trigger stops after the last file present at start.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming import DataStreamReader
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadMaxFiles,
    SupportsTriggerAvailableNow,
)

from darooghe.config import Settings
from darooghe.records import parse_record
from darooghe.schema import FIELDS, spark_ddl
from darooghe.spark_json import json_fields
from darooghe.topics import VALID_TRANSACTIONS

RECORD_FILES_FORMAT = "darooghe_records"
RECORD_FILE_SUFFIXES = (".jsonl", ".json", ".records")

#: The fields of a valid transaction value the streaming jobs use (device_info is not needed).
TRANSACTION_SCHEMA = spark_ddl(tuple(f for f in FIELDS if f != "device_info"))


def record_file_names(directory: str | Path) -> list[str]:
    """Record files of a directory, in name order (hidden and temporary files skipped)."""
    return sorted(
        n
        for n in os.listdir(directory)
        if not n.startswith((".", "_")) and n.endswith(RECORD_FILE_SUFFIXES)
    )


class RecordFileStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Offsets are {"last": <name of the last file read>} ("" before the first)."""

    def __init__(self, directory: str, files_per_batch: int) -> None:
        self.directory = directory
        self.files_per_batch = files_per_batch
        self.stop_after: str | None = None

    def _after(self, last: str) -> list[str]:
        names = [n for n in record_file_names(self.directory) if n > last]
        if self.stop_after is not None:
            names = [n for n in names if n <= self.stop_after]
        return names

    def initialOffset(self) -> dict:
        return {"last": ""}

    def getDefaultReadLimit(self):
        return ReadMaxFiles(self.files_per_batch)

    def prepareForTriggerAvailableNow(self) -> None:
        names = record_file_names(self.directory)
        self.stop_after = names[-1] if names else ""

    def latestOffset(self, start: dict, limit) -> dict:
        names = self._after(start["last"])
        if not names:
            return start
        if not isinstance(limit, ReadAllAvailable) and isinstance(limit, ReadMaxFiles):
            names = names[: limit.max_files]
        return {"last": names[-1]}

    def partitions(self, start: dict, end: dict):
        names = [n for n in record_file_names(self.directory) if start["last"] < n <= end["last"]]
        return [InputPartition(os.path.join(self.directory, n)) for n in names]

    def read(self, partition):
        path = partition.value
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    rec = parse_record(line, f"{path}:{lineno}")
                    yield (rec.key, rec.value, rec.timestamp)

    def commit(self, end: dict) -> None:
        pass


class RecordFileDataSource(DataSource):
    """`spark.readStream.format("darooghe_records").option("path", DIR)`: record files in name order."""

    @classmethod
    def name(cls) -> str:
        return RECORD_FILES_FORMAT

    def schema(self) -> str:
        return "key string, value string, timestamp long"

    def streamReader(self, schema):
        directory = self.options.get("path")
        if not directory or not os.path.isdir(directory):
            raise ValueError(f"record file source: path {directory!r} is not a directory")
        return RecordFileStreamReader(directory, int(self.options.get("filesPerBatch", "1")))


@dataclass(frozen=True)
class SourceConfig:
    """`kind` "kafka" (topic, from the earliest offset on a fresh checkpoint) or "file" (input_dir)."""

    kind: str = "kafka"
    input_dir: Path | None = None
    topic: str = VALID_TRANSACTIONS.name
    max_offsets_per_trigger: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("kafka", "file"):
            raise ValueError(f"source {self.kind!r} is not one of kafka, file")
        if self.kind == "file":
            if self.input_dir is None:
                raise ValueError("source file needs --input DIR (a directory of record files)")
            if not Path(self.input_dir).is_dir():
                raise ValueError(f"--input {self.input_dir}: not a directory of record files")

    @property
    def available_now(self) -> bool:
        """File mode processes the files present at start, then stops."""
        return self.kind == "file"

    def describe(self) -> str:
        return (
            f"kafka topic {self.topic}"
            if self.kind == "kafka"
            else f"record files in {self.input_dir}"
        )


#: How long the broker may hold a fetch of Spark's Kafka reader that finds no new records (Kafka's
#: default is 500 ms). A micro-batch whose offset range ends a few records short of the log end
#: (the last full batch of a backlog) waited that long in every task: measured on a 400,000-record
#: backlog in batches of 25,000, the passthrough's last full batch took 1,253 ms against about
#: 300 for the others, the fraud job's 2,227 against about 1,200; with 50 ms, 390 ms.
FETCH_MAX_WAIT_MS = 50


def kafka_stream(
    spark: SparkSession, settings: Settings, topic: str, max_offsets: int | None = None
) -> DataStreamReader:
    """The Kafka reader of every streaming job and of the bench's passthrough (call .load())."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        # Only committed records: the validator writes valid_transactions in Kafka transactions.
        .option("kafka.isolation.level", "read_committed")
        .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
    )
    if max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    return reader


def read_records(spark: SparkSession, source: SourceConfig, settings: Settings) -> DataFrame:
    """The raw record stream: key, value (strings), record_time (timestamp)."""
    if source.kind == "file":
        spark.dataSource.register(RecordFileDataSource)
        raw = (
            spark.readStream.format(RECORD_FILES_FORMAT)
            .option("path", str(Path(source.input_dir).resolve()))
            .option("filesPerBatch", "1")
            .load()
        )
        return raw.select("key", "value", F.timestamp_millis("timestamp").alias("record_time"))
    raw = kafka_stream(spark, settings, source.topic, source.max_offsets_per_trigger).load()
    return raw.select(
        F.col("key").cast("string").alias("key"),
        F.col("value").cast("string").alias("value"),
        F.col("timestamp").alias("record_time"),
    )


#: What the fraud rules read of a transaction: parsing only these fields is measurably cheaper.
FRAUD_FIELDS_SCHEMA = spark_ddl(
    ("transaction_id", "timestamp", "customer_id", "amount", "location", "risk_level")
)


def parse_transactions(records: DataFrame, schema: str = TRANSACTION_SCHEMA) -> DataFrame:
    """Typed transaction columns plus `event_time` (timestamp of the value's `timestamp` field).

    Values that do not parse (the validated topic should hold none) are dropped here; Spark's
    progress counts them in numInputRows, so in - out shows them.
    """
    parsed = records.select(json_fields(F.col("value"), schema), "record_time")  # parsed once
    return parsed.withColumn("event_time", F.to_timestamp("timestamp")).where(
        F.col("transaction_id").isNotNull()
        & F.col("customer_id").isNotNull()
        & F.col("event_time").isNotNull()
    )


def workdir_for(base: Path, source: SourceConfig, output: Path | None) -> Path:
    """One work directory per (source, sink) under `base`: a replay never resumes another run's
    checkpoint; the production Kafka-to-Kafka query keeps the plain `kafka` folder."""
    if source.kind == "kafka" and output is None and source.topic == VALID_TRANSACTIONS.name:
        return base / "kafka"
    ident = (
        f"{source.kind}|{source.topic}|{source.input_dir and Path(source.input_dir).resolve()}"
        f"|{output and Path(output).resolve()}"
    )
    return base / f"{source.kind}-{hashlib.sha1(ident.encode()).hexdigest()[:12]}"
