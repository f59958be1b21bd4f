"""The Kafka -> MongoDB stage in the asset graph: one asset per sink, all made by `sink_asset`.

Each sink is an asset downstream of its topic, materialised by the sensors of
sensors/kafka_to_mongo.py when the topic's end offsets move (or by hand). The logic and its
idempotence live in `darooghe.kafka_to_mongo`. A sink moves past a record it cannot store and sends
it to the dead-letter topic, so the run succeeds; every sink asset therefore carries the
`no_dead_letters` check, which fails while the sink has dead-lettered any record, with the count
and the first reason.
"""

from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class SinkKind:
    """What a kind of sink asset runs (`run`), how it describes itself ({topic} is filled in) and
    what it adds to its metadata about the collection (`summarize`)."""

    run: SinkRun
    description: str
    summarize: Callable[[Database, str], dict] | None = None


def metric_kind(shape: str) -> SinkKind:
    """The sink of a topic carrying the records of the metrics topic `shape`."""
    how = (
        "each 5-minute window's ranking replaced as a whole"
        if shape == topics.METRICS_TOP_MERCHANTS.name
        else "upserted by metric_id"
    )

    def run(db, consumer, topic, collection, log, dead_letters) -> SinkReport:
        return sink_metrics(db, consumer, topic, shape, collection, log, dead_letters)

    description = (
        f"{topics.BY_NAME[shape].description}: records of {{topic}} since the last run, {how}."
    )
    return SinkKind(run, description)


ERROR_SUMMARY = SinkKind(
    sink_error_summary,
    "Invalid records per error code and hour (UTC, of the record's arrival): the records of "
    "{topic} since the last run added to counts kept with the sink's offsets, and the changed "
    "hours rewritten with their absolute counts, so a re-run never double counts.",
)
FRAUD_ALERTS = SinkKind(
    sink_fraud_alerts,
    "Fraud alerts of {topic} since the last run, upserted by alert_id (first detection wins), "
    "with event_time/detected_at as datetimes and event_date/event_hour for charts.",
    count_by("rule", "alerts_by_rule"),
)
FRAUD_DECISIONS = SinkKind(
    sink_fraud_decisions,
    "REVIEW/BLOCK decisions of {topic} since the last run, one document per transaction "
    "(_id = transaction_id, the latest decision wins), with event_date/event_hour.",
    count_by("decision", "decisions_by_decision"),
)


def sink_asset(
    kind: SinkKind,
    topic: str,
    key: dg.AssetKey,
    dep: dg.AssetKey,
    collection: str,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The asset of one Kafka -> MongoDB sink of `kind`: it moves the records of `topic` that
    arrived since the last run into `collection` and reports the run, its dead-letter check and
    the kind's summary (tests sink a fresh topic into a collection of their own)."""

    @dg.asset(
        key=key,
        deps=[dep],
        description=kind.description.format(topic=topic),
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
                report = kind.run(db, consumer, topic, collection, context.log.info, dead_letters)
                extra = kind.summarize(db, collection) if kind.summarize else {}
        finally:
            consumer.close()
        return dg.MaterializeResult(
            metadata={**sink_metadata(report), **extra},
            check_results=[dead_letter_check(report, dead_letter_topic)],
        )

    return _sink


live_metric_sinks = [
    sink_asset(
        metric_kind(t.name),
        t.name,
        METRIC_SINK_KEYS[t.name],
        c.METRICS_TOPIC_KEYS[t.name],
        METRIC_COLLECTIONS[t.name],
    )
    for t in topics.METRICS_TOPICS
]
error_summary = sink_asset(
    ERROR_SUMMARY,
    topics.ERROR_LOGS.name,
    c.ERROR_SUMMARY_COLLECTION,
    c.ERROR_LOGS_TOPIC,
    mc.ERROR_SUMMARY,
)
fraud_alerts = sink_asset(
    FRAUD_ALERTS,
    topics.FRAUD_ALERTS.name,
    c.FRAUD_ALERTS_COLLECTION,
    c.FRAUD_ALERTS_TOPIC,
    mc.FRAUD_ALERTS,
)
fraud_decisions = sink_asset(
    FRAUD_DECISIONS,
    topics.FRAUD_DECISIONS.name,
    c.FRAUD_DECISIONS_COLLECTION,
    c.FRAUD_DECISIONS_TOPIC,
    mc.FRAUD_DECISIONS,
)
