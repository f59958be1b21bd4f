"""The Kafka -> MongoDB stage in the asset graph: one asset per sink, all made by `sink_asset`.

Each sink is an asset downstream of its topic, materialised by the sensors of
sensors/kafka_to_mongo.py when the topic's end offsets move (or by hand). The logic and its
idempotence live in `darooghe.kafka_to_mongo`. A sink moves past a record it cannot store and sends
it to the dead-letter topic, so the run succeeds; every sink asset therefore carries the
`no_dead_letters` check, which fails while the sink has dead-lettered any record, with the count
and the first reason.
"""

from collections.abc import Callable

import dagster as dg
from confluent_kafka import Consumer
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe import topics
from darooghe.kafka_to_mongo.dead_letters import PRODUCER_CONFIG, DeadLetters
from darooghe.kafka_to_mongo.error_summary import sink_error_summary
from darooghe.kafka_to_mongo.fraud_alerts import sink_fraud_alerts
from darooghe.kafka_to_mongo.fraud_decisions import sink_fraud_decisions
from darooghe.kafka_to_mongo.live_metrics import METRIC_COLLECTIONS, sink_metrics
from darooghe.kafka_to_mongo.loop import CONSUMER_CONFIG, SinkReport
from darooghe_assets import constants as c
from darooghe_assets.resources import KafkaResource, MongoResource

NO_DEAD_LETTERS = "no_dead_letters"
_RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)

#: metrics topic -> asset key of the collection it is sunk into
METRIC_SINK_KEYS = {
    topics.METRICS_CATEGORY_VOLUME.name: c.LIVE_CATEGORY_VOLUME,
    topics.METRICS_COMMISSION_BY_TYPE.name: c.LIVE_COMMISSION_BY_TYPE,
    topics.METRICS_COMMISSION_RATIO.name: c.LIVE_COMMISSION_RATIO,
    topics.METRICS_TOP_MERCHANTS.name: c.LIVE_TOP_MERCHANTS,
}

#: (db, consumer, topic, collection, log, dead_letters) -> the run's report
SinkRun = Callable[[Database, Consumer, str, str, Callable[[str], None], DeadLetters], SinkReport]


def dead_letter_check_spec(key: dg.AssetKey, topic: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        NO_DEAD_LETTERS,
        asset=key,
        description=f"Fails while records of {topic} that this sink could not store sit in the "
        "dead-letter topic (source, error and the record as it was in their headers).",
    )


def sink_metadata(report: SinkReport) -> dict:
    metadata = {
        "topic": report.topic,
        "collection": report.collection,
        "records_read": report.records_read,
        "records_stored": report.records_stored,
        "records_dead_lettered": report.dead_lettered,
        "dead_letters_total": report.dead_letters_total,
        "chunks": report.chunks,
        "documents_written": report.documents_written,
        "documents_deleted": report.documents_deleted,
        "collection_count": dg.MetadataValue.int(report.collection_count),
        "next_offsets": dg.MetadataValue.json(
            {str(p): o for p, o in sorted(report.offsets.items())}
        ),
        "seconds": round(report.seconds, 2),
    }
    if report.first_dead_letter:
        metadata["first_dead_letter"] = report.first_dead_letter
    return metadata


def dead_letter_check(
    report: SinkReport, dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name
) -> dg.AssetCheckResult:
    facts = {
        "dead_letters_total": report.dead_letters_total,
        "dead_lettered_this_run": report.dead_lettered,
        "dead_letter_topic": dead_letter_topic,
    }
    if report.dead_letters_total == 0:
        return dg.AssetCheckResult(check_name=NO_DEAD_LETTERS, passed=True, metadata=facts)
    description = (
        f"{report.dead_letters_total} record(s) of {report.topic} could not be stored in "
        f"{report.collection} and are in {dead_letter_topic} (`darooghe topics dump "
        f"{dead_letter_topic}`)"
    )
    if report.first_dead_letter:
        description += f"; first this run: {report.first_dead_letter}"
    return dg.AssetCheckResult(
        check_name=NO_DEAD_LETTERS,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=facts,
    )


def count_by(field: str, name: str) -> Callable[[Database, str], dict]:
    """Extra metadata `name`: the collection's documents counted per value of `field`."""

    def counts(db: Database, collection: str) -> dict:
        pipeline = [{"$group": {"_id": f"${field}", "n": {"$sum": 1}}}]
        by_value = {row["_id"]: row["n"] for row in db[collection].aggregate(pipeline)}
        return {name: dg.MetadataValue.json(by_value)}

    return counts


def sink_asset(
    run: SinkRun,
    topic: str,
    key: dg.AssetKey,
    dep: dg.AssetKey,
    collection: str,
    description: str,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
    summarize: Callable[[Database, str], dict] | None = None,
) -> dg.AssetsDefinition:
    """The asset of one Kafka -> MongoDB sink: `run` moves the records of `topic` that arrived since
    the last run into `collection`; the materialisation reports the run and its dead-letter check,
    plus what `summarize` says about the collection."""

    @dg.asset(
        key=key,
        deps=[dep],
        description=description,
        group_name=c.GROUP_SINKS,
        kinds={"kafka", "mongodb"},
        owners=[c.OWNER],
        retry_policy=_RETRY,
        metadata={"topic": topic, "collection": collection},
        check_specs=[dead_letter_check_spec(key, topic)],
    )
    def _sink(context: dg.AssetExecutionContext, kafka: KafkaResource, mongo: MongoResource):
        consumer = kafka.consumer(**CONSUMER_CONFIG)  # read-ahead bounded near one chunk
        dead_letters = DeadLetters(kafka.producer(**PRODUCER_CONFIG), collection, dead_letter_topic)
        try:
            with mongo.get_db() as db:
                report = run(db, consumer, topic, collection, context.log.info, dead_letters)
                extra = summarize(db, collection) if summarize else {}
        finally:
            consumer.close()
        return dg.MaterializeResult(
            metadata={**sink_metadata(report), **extra},
            check_results=[dead_letter_check(report, dead_letter_topic)],
        )

    return _sink


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
    collection = collection or METRIC_COLLECTIONS[shape]
    how = (
        "each 5-minute window's ranking replaced as a whole"
        if shape == topics.METRICS_TOP_MERCHANTS.name
        else "upserted by metric_id"
    )

    def run(db, consumer, topic, collection, log, dead_letters) -> SinkReport:
        return sink_metrics(db, consumer, topic, shape, collection, log, dead_letters)

    description = (
        f"{topics.BY_NAME[shape].description}: records of {topic} since the last run, {how}."
    )
    return sink_asset(run, topic, key, dep, collection, description, dead_letter_topic)


def error_summary_asset(
    topic: str = topics.ERROR_LOGS.name,
    key: dg.AssetKey = c.ERROR_SUMMARY_COLLECTION,
    dep: dg.AssetKey = c.ERROR_LOGS_TOPIC,
    collection: str = mc.ERROR_SUMMARY,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The error-log summary asset of `topic` (tests summarise a fresh topic)."""
    description = (
        "Invalid records per error code and hour (UTC, of the record's arrival): the records of "
        f"{topic} since the last run added to counts kept with the sink's offsets, and the "
        "changed hours rewritten with their absolute counts, so a re-run never double counts."
    )
    return sink_asset(
        sink_error_summary, topic, key, dep, collection, description, dead_letter_topic
    )


def fraud_alerts_sink_asset(
    topic: str = topics.FRAUD_ALERTS.name,
    key: dg.AssetKey = c.FRAUD_ALERTS_COLLECTION,
    dep: dg.AssetKey = c.FRAUD_ALERTS_TOPIC,
    collection: str = mc.FRAUD_ALERTS,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The MongoDB sink of an alerts topic (tests sink a fresh topic into a collection of their own)."""
    description = (
        f"Fraud alerts of {topic} since the last run, upserted by alert_id (first detection wins), "
        "with event_time/detected_at as datetimes and event_date/event_hour for charts."
    )
    return sink_asset(
        sink_fraud_alerts,
        topic,
        key,
        dep,
        collection,
        description,
        dead_letter_topic,
        summarize=count_by("rule", "alerts_by_rule"),
    )


def fraud_decisions_sink_asset(
    topic: str = topics.FRAUD_DECISIONS.name,
    key: dg.AssetKey = c.FRAUD_DECISIONS_COLLECTION,
    dep: dg.AssetKey = c.FRAUD_DECISIONS_TOPIC,
    collection: str = mc.FRAUD_DECISIONS,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The MongoDB sink of a decisions topic (tests sink a fresh topic into a collection)."""
    description = (
        f"REVIEW/BLOCK decisions of {topic} since the last run, one document per transaction "
        "(_id = transaction_id, the latest decision wins), with event_date/event_hour."
    )
    return sink_asset(
        sink_fraud_decisions,
        topic,
        key,
        dep,
        collection,
        description,
        dead_letter_topic,
        summarize=count_by("decision", "decisions_by_decision"),
    )


live_metric_sinks = [
    metric_sink_asset(t.name, METRIC_SINK_KEYS[t.name], c.METRICS_TOPIC_KEYS[t.name])
    for t in topics.METRICS_TOPICS
]
error_summary = error_summary_asset()
fraud_alerts = fraud_alerts_sink_asset()
fraud_decisions = fraud_decisions_sink_asset()
