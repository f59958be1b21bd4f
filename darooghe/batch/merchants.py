"""The merchant reference in the batch layer: read from Kafka, stored in MongoDB, held against the
transactions.

The generator publishes its merchant register with the transactions (darooghe.merchant_reference).
`read_reference` is a Spark batch read of the whole compacted topic; `latest_reference` keeps the
latest record per key, as compaction eventually would: a key's records all sit in one partition
(the producer hashes keys), so the highest offset is the latest. A null value deletes the merchant.
A record that is not a valid merchant is reported with its coordinates (`reference_problems`),
never written as a merchant.

`coverage` compares the register with the transactions: a merchant the transactions name without a
reference record, or under another category than the register's, means the register does not
describe these transactions; the off-hours analysis reports those merchants instead of judging them
against hours they do not have.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.business_hours import IN_PERSON_METHODS, NO_REFERENCE, register_frame
from darooghe.merchant_reference import FIELDS, SPARK_DDL
from darooghe.schema import MERCHANT_CATEGORIES

COLLECTION = mc.MERCHANTS
CATEGORY_DIFFERS = "category_differs"
PROBLEM_EXAMPLES = 5


def read_reference(spark: SparkSession, bootstrap_servers: str, topic: str) -> DataFrame:
    """Every record of the reference topic (key, value, partition, offset), as a batch read."""
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .load()
    )


def latest_reference(records: DataFrame) -> DataFrame:
    """The latest record per key, parsed: FIELDS, the Kafka coordinates and `problem` (null when
    the record is a valid merchant). Deleted merchants (null value) are left out."""
    latest = (
        records.select(
            F.col("key").cast("string").alias("key"),
            F.col("value").cast("string").alias("value"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
        )
        .withColumn(
            "_rank", F.row_number().over(Window.partitionBy("key").orderBy(F.desc("kafka_offset")))
        )
        .where((F.col("_rank") == 1) & F.col("value").isNotNull())
    )
    parsed = latest.withColumn("m", F.from_json("value", SPARK_DDL)).select(
        "key", "kafka_partition", "kafka_offset", "m.*"
    )
    problem = (
        F.when(F.col("key").isNull(), F.lit("record has no key"))
        .when(F.col("merchant_id").isNull(), F.lit("value is not a merchant reference object"))
        .when(F.col("merchant_id") != F.col("key"), F.lit("merchant_id differs from the key"))
        .when(
            ~F.coalesce(F.col("merchant_category").isin(*MERCHANT_CATEGORIES), F.lit(False)),
            F.concat(
                F.lit("unknown merchant_category "), F.coalesce("merchant_category", F.lit("null"))
            ),
        )
        .when(
            F.col("open_hour").isNull()
            | F.col("close_hour").isNull()
            | ~(
                (F.col("open_hour") >= 0)
                & (F.col("open_hour") < F.col("close_hour"))
                & (F.col("close_hour") <= 24)
            ),
            F.lit("business hours are not 0 <= open_hour < close_hour <= 24"),
        )
    )
    return parsed.withColumn("problem", problem).select(
        *FIELDS, "key", "kafka_partition", "kafka_offset", "problem"
    )


def reference_problems(latest: DataFrame, topic: str, limit: int = PROBLEM_EXAMPLES) -> list[str]:
    """Up to `limit` invalid records as readable lines naming the topic, the record and the problem."""
    rows = (
        latest.where(F.col("problem").isNotNull())
        .orderBy("kafka_partition", "kafka_offset")
        .limit(limit)
        .collect()
    )
    return [
        f"{topic} partition {r.kafka_partition} offset {r.kafka_offset} key {r.key!r}: {r.problem}"
        for r in rows
    ]


def register(latest: DataFrame) -> DataFrame:
    """The valid merchants of `latest_reference`, one row per merchant, FIELDS only."""
    return latest.where(F.col("problem").isNull()).select(*FIELDS).orderBy("merchant_id")


def load_register(db) -> list[dict]:
    """The merchants reference collection as the off-hours analysis takes it."""
    projection = {
        "_id": 0,
        "merchant_id": 1,
        "merchant_category": 1,
        "open_hour": 1,
        "close_hour": 1,
    }
    return list(db[COLLECTION].find({}, projection).sort("merchant_id", 1))


def coverage(transactions: DataFrame, merchants: list[dict]) -> DataFrame:
    """Merchants of the transactions the register does not describe: `problem` is NO_REFERENCE
    (no record) or CATEGORY_DIFFERS (the transactions name another category), with their counts."""
    seen = transactions.groupBy("merchant_id", "merchant_category").agg(
        F.count(F.lit(1)).alias("transaction_count"),
        F.sum(F.when(F.col("payment_method").isin(*IN_PERSON_METHODS), 1).otherwise(0)).alias(
            "in_person_count"
        ),
    )
    known = register_frame(transactions.sparkSession, merchants)
    problem = F.when(F.col("open_hour").isNull(), F.lit(NO_REFERENCE)).when(
        F.col("reference_category") != F.col("merchant_category"), F.lit(CATEGORY_DIFFERS)
    )
    return (
        seen.join(F.broadcast(known), "merchant_id", "left")
        .withColumn("problem", problem)
        .where(F.col("problem").isNotNull())
        .select(
            "merchant_id",
            "merchant_category",
            "reference_category",
            "transaction_count",
            "in_person_count",
            "problem",
        )
        .orderBy("merchant_id", "merchant_category")
    )
