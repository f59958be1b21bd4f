"""The transaction history lake: valid transactions from Kafka into Parquet, partitioned by event date.

Why Structured Streaming for a batch job: the Kafka source remembers, in its checkpoint, which
offsets it has read, and the Parquet file sink records in `<lake>/_spark_metadata` which files each
micro-batch committed. Run with the `availableNow` trigger, one materialisation reads exactly the
records that arrived since the last one, writes them, and stops — every valid transaction lands in
the lake exactly once, across crashes and re-runs (a batch that failed half-way is redone from the
checkpoint, and readers only see files the metadata log committed).

The topic is read `read_committed`: the validator writes it in Kafka transactions, and an aborted
transaction must never reach the lake. Layout: `<lake>/event_date=YYYY-MM-DD/part-*.parquet`
(the UTC date of the event time), so a reader that filters on `event_date` reads only those days.

The reader runs with `failOnDataLoss=false`: records deleted by topic retention before the lake
read them are gone either way, and stopping the lake for good would lose what comes after them too.
They are never lost silently, though: before each run the offsets the checkpoint has read up to
are compared with where the topic now begins, and the gap is reported (`offsets_lost`, per
partition, in the log and the asset's metadata and check). It counts offsets, so transaction
markers among the deleted records count too: an upper bound on the records lost.

Lake columns: the event fields of darooghe.schema (SPARK_DDL; `timestamp` kept as the original
ISO string), `event_time` (timestamp UTC), `event_date` (partition), and the Kafka coordinates
`kafka_partition`, `kafka_offset`, `kafka_timestamp` (lineage; (partition, offset) is unique).
"""

from __future__ import annotations

import functools
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from darooghe.kafka_io import partition_offsets
from darooghe.schema import FIELDS, SPARK_DDL
from darooghe.spark_json import json_fields

LAKE_NAME = "transactions_lake"
PARTITION_COLUMN = "event_date"
LAKE_METADATA_DIR = "_spark_metadata"

EXTRA_COLUMNS = (
    "event_time",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
    PARTITION_COLUMN,
)
LAKE_COLUMNS = (*FIELDS, *EXTRA_COLUMNS)
#: Records per micro-batch of the lake stream by default. The lake has no watermark (it appends
#: every row it reads, in offset order), so a cap costs no exactness, unlike the streaming
#: jobs (see streaming/options.py); it bounds the memory of a replayed backlog's batch.
LAKE_MAX_OFFSETS_PER_TRIGGER = 200_000


@functools.cache
def lake_schema() -> StructType:
    """The lake's StructType: darooghe.schema.SPARK_DDL's fields, then EXTRA_COLUMNS.

    Built on first use because parsing DDL needs a running Spark session (Dagster imports this
    module without one).
    """
    events = StructType.fromDDL(SPARK_DDL)
    if tuple(events.fieldNames()) != FIELDS:
        raise AssertionError(
            f"schema.SPARK_DDL fields {events.fieldNames()} differ from schema.FIELDS"
        )
    return StructType(
        [
            *events.fields,
            StructField("event_time", TimestampType(), False),
            StructField("kafka_partition", IntegerType(), False),
            StructField("kafka_offset", LongType(), False),
            StructField("kafka_timestamp", TimestampType(), True),
            StructField(PARTITION_COLUMN, StringType(), False),
        ]
    )


def lake_checkpoint_dir(checkpoints_dir: Path) -> Path:
    return Path(checkpoints_dir) / LAKE_NAME


def parse_records(records: DataFrame) -> DataFrame:
    """Kafka rows (value, partition, offset, timestamp) -> every row with its parsed columns and a
    `parsed` flag (false when the value is not a transaction; the validated topic should hold none)."""
    parsed = records.select(
        json_fields(F.col("value").cast("string"), SPARK_DDL),  # parsed once (spark_json)
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
    )
    event_time = F.try_to_timestamp(F.col("timestamp"))
    return parsed.withColumn("event_time", event_time).withColumn(
        "parsed",
        F.col("transaction_id").isNotNull()
        & F.col("customer_id").isNotNull()
        & F.col("merchant_id").isNotNull()
        & F.col("amount").isNotNull()
        & F.col("status").isNotNull()
        & F.col("event_time").isNotNull(),
    )


def event_date(event_time: Column) -> Column:
    """The partition value: the UTC date of the event (the session time zone is UTC)."""
    return F.date_format(event_time, "yyyy-MM-dd")


def to_lake_rows(parsed: DataFrame) -> DataFrame:
    """Parsed rows -> lake rows in LAKE_COLUMNS order (rows that did not parse are left out)."""
    return (
        parsed.where(F.col("parsed"))
        .withColumn(PARTITION_COLUMN, event_date(F.col("event_time")))
        .select(*LAKE_COLUMNS)
    )


@dataclass
class IngestResult:
    """What one availableNow run did: records read from Kafka, rows written, rows refused."""

    records_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    batches: int = 0
    seconds: float = 0.0
    end_offsets: dict = field(default_factory=dict)
    #: partition -> offsets deleted by retention before the lake read them (partitions with a loss)
    offsets_lost: dict[int, int] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {
            "records_read": self.records_read,
            "rows_written": self.rows_written,
            "rows_rejected": self.rows_rejected,
            "micro_batches": self.batches,
            "ingest_seconds": round(self.seconds, 2),
            "offsets_lost": sum(self.offsets_lost.values()),
        }


def checkpoint_offsets(checkpoint_dir: str | Path, topic: str) -> dict[int, int]:
    """Per partition, the offset the lake reads `topic` from next: the end offsets of the last
    micro-batch its checkpoint committed (empty before the first one)."""
    checkpoint_dir = Path(checkpoint_dir)
    commits = checkpoint_dir / "commits"
    done = (
        sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())
        if commits.is_dir()
        else []
    )
    if not done:
        return {}
    # offsets/<batch>: a version line, the batch metadata, then one JSON line per source.
    for line in (checkpoint_dir / "offsets" / str(done[-1])).read_text().splitlines()[2:]:
        try:
            source = json.loads(line)
        except ValueError:
            continue
        if isinstance(source, dict) and topic in source:
            return {int(p): int(o) for p, o in source[topic].items()}
    return {}


def earliest_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Per partition, the first offset `topic` still holds (its low watermark)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"darooghe-lake-{uuid.uuid4().hex[:8]}",
        }
    )
    try:
        return {p: o.low for p, o in partition_offsets(consumer, topic).items()}
    finally:
        consumer.close()


def offsets_lost(read_up_to: dict[int, int], earliest: dict[int, int]) -> dict[int, int]:
    """Partition -> offsets between where the lake stopped reading and where the topic now begins."""
    gaps = {p: low - read_up_to.get(p, 0) for p, low in earliest.items()}
    return {p: gap for p, gap in sorted(gaps.items()) if gap > 0}


def ingest(
    spark: SparkSession,
    bootstrap_servers: str,
    topic: str,
    lake_dir: str | Path,
    checkpoint_dir: str | Path,
    max_offsets_per_trigger: int | None = None,
    log=print,
) -> IngestResult:
    """Append what is new in `topic` to the lake and stop (trigger availableNow)."""
    lake_dir, checkpoint_dir = Path(lake_dir), Path(checkpoint_dir)
    lake_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed")
        # Records deleted before the lake read them are counted below (see the module doc).
        .option("failOnDataLoss", "false")
    )
    lost = offsets_lost(
        checkpoint_offsets(checkpoint_dir, topic), earliest_offsets(bootstrap_servers, topic)
    )
    if lost:
        log(
            f"lake: {sum(lost.values())} offset(s) of {topic} were deleted before the lake read "
            f"them (by partition: {lost}); those records are not in the lake"
        )
    if max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    parsed = parse_records(reader.load()).observe(
        "lake_ingest",
        F.count(F.lit(1)).alias("records"),
        F.sum(F.when(F.col("parsed"), 1).otherwise(0)).alias("parsed"),
    )
    started = time.monotonic()
    query = (
        to_lake_rows(parsed)
        .writeStream.format("parquet")
        .option("path", str(lake_dir))
        .option("checkpointLocation", str(checkpoint_dir))
        .partitionBy(PARTITION_COLUMN)
        .outputMode("append")
        .queryName(f"{LAKE_NAME}_ingest_{os.getpid()}")
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    result = IngestResult(seconds=time.monotonic() - started, offsets_lost=lost)
    for progress in query.recentProgress:
        if not progress.get("numInputRows") and not progress.get("observedMetrics"):
            continue
        result.batches += 1
        metrics = (progress.get("observedMetrics") or {}).get("lake_ingest")
        metrics = metrics.asDict() if hasattr(metrics, "asDict") else dict(metrics or {})
        records = int(metrics.get("records") or 0)
        good = int(metrics.get("parsed") or 0)
        result.records_read += records
        result.rows_written += good
        result.rows_rejected += records - good
        for source in progress.get("sources", []):
            if source.get("endOffset"):
                result.end_offsets = source["endOffset"]
        log(
            f"lake: micro-batch {progress.get('batchId')}: {records} records read, "
            f"{good} rows written, {records - good} refused"
        )
    if query.exception() is not None:  # awaitTermination raises first; kept for clarity
        raise RuntimeError(f"lake ingest from {topic!r} failed: {query.exception()}")
    log(
        f"lake: {result.records_read} records read from {topic}, {result.rows_written} rows "
        f"written to {lake_dir} in {result.seconds:.1f} s"
    )
    return result


def has_data(lake_dir: str | Path) -> bool:
    """True when the lake has committed at least one micro-batch."""
    metadata = Path(lake_dir) / LAKE_METADATA_DIR
    return metadata.is_dir() and any(not p.name.startswith(".") for p in metadata.iterdir())


def read_lake(spark: SparkSession, lake_dir: str | Path) -> DataFrame:
    """The lake as a DataFrame (lake_schema()); empty when nothing was ingested yet.

    Reading the directory goes through `_spark_metadata`, so only committed files are seen.
    """
    lake_dir = Path(lake_dir)
    if not has_data(lake_dir) and not any(lake_dir.glob(f"{PARTITION_COLUMN}=*")):
        return spark.createDataFrame([], lake_schema())
    return spark.read.schema(lake_schema()).parquet(str(lake_dir)).select(*LAKE_COLUMNS)


@dataclass(frozen=True)
class LakeStats:
    rows: int
    days: int
    first_event: object
    last_event: object
    customers: int
    merchants: int

    def as_metadata(self) -> dict:
        return {
            "lake_rows": self.rows,
            "lake_days": self.days,
            "first_event": str(self.first_event) if self.first_event else "",
            "last_event": str(self.last_event) if self.last_event else "",
            "customers": self.customers,
            "merchants": self.merchants,
        }


def lake_stats(lake: DataFrame) -> LakeStats:
    row = lake.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct(PARTITION_COLUMN).alias("days"),
        F.date_format(F.min("event_time"), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("first"),
        F.date_format(F.max("event_time"), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("last"),
        F.countDistinct("customer_id").alias("customers"),
        F.countDistinct("merchant_id").alias("merchants"),
    ).first()
    return LakeStats(row.rows, row.days, row["first"], row["last"], row.customers, row.merchants)
