"""Kafka -> MongoDB sinks of the real-time layer: the four live metrics and the error-log summary.

Each sink is an asset downstream of its topic, materialised by the sensors in sensors/sinks.py when
the topic's end offsets move (or by hand). The logic and its idempotence live in `darooghe.sinks`;
the fraud-alert sink is defined with the streaming assets (constants.FRAUD_ALERTS_COLLECTION).
Each sink carries the `no_dead_letters` check (darooghe_assets.sink_results).
"""

import dagster as dg

from darooghe import mongo_collections as mc
from darooghe import sinks, topics
from darooghe_assets import constants as c
from darooghe_assets.resources import KafkaResource, MongoResource
from darooghe_assets.sink_results import (
    clients,
    dead_letter_check,
    dead_letter_check_spec,
    sink_metadata,
)

#: metrics topic -> asset key of the collection it is sunk into
METRIC_SINK_KEYS = {
    topics.METRICS_CATEGORY_VOLUME.name: c.LIVE_CATEGORY_VOLUME,
    topics.METRICS_COMMISSION_BY_TYPE.name: c.LIVE_COMMISSION_BY_TYPE,
    topics.METRICS_COMMISSION_RATIO.name: c.LIVE_COMMISSION_RATIO,
    topics.METRICS_TOP_MERCHANTS.name: c.LIVE_TOP_MERCHANTS,
}
_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)


def metric_sink_asset(
    topic: str,
    key: dg.AssetKey,
    dep: dg.AssetKey,
    shape: str | None = None,
    collection: str | None = None,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The sink asset of a live-metrics topic; `shape` names the metrics topic whose records `topic`
    carries and `collection` the target (both default from `topic`; tests sink a fresh topic)."""
    shape = shape or topic
    collection = collection or sinks.METRIC_COLLECTIONS[shape]
    how = (
        "each 5-minute window's ranking replaced as a whole"
        if shape == topics.METRICS_TOP_MERCHANTS.name
        else "upserted by metric_id"
    )

    @dg.asset(
        key=key,
        deps=[dep],
        description=f"{topics.BY_NAME[shape].description}: records of {topic} since the last run, {how}.",
        group_name=c.GROUP_SINKS,
        kinds={"kafka", "mongodb"},
        owners=[c.OWNER],
        retry_policy=_RETRY,
        metadata={"topic": topic, "collection": collection},
        check_specs=[dead_letter_check_spec(key, topic)],
    )
    def _sink(context: dg.AssetExecutionContext, kafka: KafkaResource, mongo: MongoResource):
        consumer, dead_letters = clients(kafka, collection, dead_letter_topic)
        try:
            with mongo.get_db() as db:
                report = sinks.sink_metrics(
                    db, consumer, topic, shape, collection, context.log.info, dead_letters
                )
        finally:
            consumer.close()
        return dg.MaterializeResult(
            metadata=sink_metadata(report),
            check_results=[dead_letter_check(report, dead_letter_topic)],
        )

    return _sink


def error_summary_asset(
    topic: str,
    key: dg.AssetKey,
    dep: dg.AssetKey,
    collection: str = mc.ERROR_SUMMARY,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The error-log summary asset of `topic` (tests summarise a fresh topic)."""

    @dg.asset(
        key=key,
        deps=[dep],
        description=(
            "Invalid records per error code and hour (UTC, of the record's arrival): the records of "
            f"{topic} since the last run added to counts kept with the sink's offsets, and the "
            "changed hours rewritten with their absolute counts, so a re-run never double counts."
        ),
        group_name=c.GROUP_SINKS,
        kinds={"kafka", "mongodb"},
        owners=[c.OWNER],
        retry_policy=_RETRY,
        metadata={"topic": topic, "collection": collection},
        check_specs=[dead_letter_check_spec(key, topic)],
    )
    def _summary(context: dg.AssetExecutionContext, kafka: KafkaResource, mongo: MongoResource):
        consumer, dead_letters = clients(kafka, collection, dead_letter_topic)
        try:
            with mongo.get_db() as db:
                report = sinks.sink_error_summary(
                    db, consumer, topic, collection, context.log.info, dead_letters
                )
        finally:
            consumer.close()
        return dg.MaterializeResult(
            metadata=sink_metadata(report),
            check_results=[dead_letter_check(report, dead_letter_topic)],
        )

    return _summary


live_metric_sinks = [
    metric_sink_asset(t.name, METRIC_SINK_KEYS[t.name], c.METRICS_TOPIC_KEYS[t.name])
    for t in topics.METRICS_TOPICS
]
error_summary = error_summary_asset(
    topics.ERROR_LOGS.name, c.ERROR_SUMMARY_COLLECTION, c.ERROR_LOGS_TOPIC
)
