"""The merchant reference collection: the generator's merchant register, from Kafka into MongoDB.

The generator publishes its merchants into the compacted topic darooghe.merchants as it produces
transactions (darooghe.merchant_reference). This asset reads the whole topic with Spark, keeps the
latest record per merchant and replaces the `merchants` collection (`_id` = merchant_id, so a
re-run writes the same documents). The off-hours analysis takes business hours from it. A record
that is not a valid merchant fails the materialisation, naming the record and the problem: a
merchant silently dropped would be judged as unknown downstream.

(No `from __future__ import annotations` here: Dagster reads the config class from the signature.)
"""

import dataclasses

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field

from darooghe import kafka_io, topics
from darooghe.batch import merchants as mr
from darooghe.batch.documents import collect_documents
from darooghe_assets import constants as c
from darooghe_assets.assets.batch import DAILY_FRESHNESS, md_table, write_documents
from darooghe_assets.resources import KafkaResource, MongoResource, SettingsResource


class MerchantsConfig(dg.Config):
    topic: str = Field(
        default=topics.MERCHANTS.name, description="compacted topic of merchant reference records"
    )


@dg.asset(
    key=c.MERCHANTS,
    deps=[c.MERCHANTS_TOPIC],
    group_name=c.GROUP_BATCH,
    kinds={"spark", "mongodb"},
    owners=[c.OWNER],
    freshness_policy=DAILY_FRESHNESS,
    description="The merchant register the generator published (darooghe.merchants, latest record "
    "per merchant): category, city, location, commission type and business hours.",
)
def merchants(
    context: dg.AssetExecutionContext,
    config: MerchantsConfig,
    pyspark: PySparkResource,
    kafka: KafkaResource,
    mongo: MongoResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    s = dataclasses.replace(settings.get(), kafka_bootstrap=kafka.bootstrap_servers)
    try:
        kafka_io.require_topic(config.topic, s)
    except kafka_io.UnknownTopicError as exc:
        raise dg.Failure(description=f"merchants: {exc}") from None
    records = mr.read_reference(pyspark.spark_session, kafka.bootstrap_servers, config.topic)
    latest = mr.latest_reference(records).cache()
    try:
        problems = mr.reference_problems(latest, config.topic)
        if problems:
            raise dg.Failure(
                description="merchants: invalid reference records (first ones):\n"
                + "\n".join(problems)
            )
        docs = collect_documents(mr.register(latest), "merchant_id")
    finally:
        latest.unpersist()
    write = write_documents(mongo, mr.COLLECTION, docs)
    context.log.info(f"merchants: {len(docs)} merchants from {config.topic}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(docs),
            "collection": write.collection,
            "topic": config.topic,
            **write.as_metadata(),
            "preview": md_table(
                docs, ["merchant_id", "merchant_category", "city", "open_hour", "close_hour"]
            ),
        }
    )
