"""The fraud rules as data in the asset graph: the rule-set topic, the rule set with its history,
the decisions topic the fraud job writes with its alerts, and its MongoDB sink `fraud_decisions`
(materialised by the offsets sensor of sensors/fraud_decisions.py when the topic moves).

`darooghe rules set` publishes a version to `darooghe.fraud_rules` (outside Dagster, so the topic
is an `AssetSpec`); materialising `fraud_rule_set` reads the history back and shows every version
(its start in event time, what it changed, the comment) as a table in the asset's metadata, so
the UI answers "which thresholds judged this transaction".
"""

import dataclasses

import dagster as dg

from darooghe import topics
from darooghe.fraud.rule_edits import differences
from darooghe.fraud.rule_store import load_rule_history
from darooghe.fraud.txn import iso_ms
from darooghe.streaming.decisions_sink import FRAUD_DECISIONS_COLLECTION, sink_fraud_decisions
from darooghe_assets import constants as c
from darooghe_assets.assets.topics import topic_spec
from darooghe_assets.resources import KafkaResource, MongoResource, SettingsResource
from darooghe_assets.sink_results import (
    clients,
    dead_letter_check,
    dead_letter_check_spec,
    sink_metadata,
)

FRAUD_RULE_SET = dg.AssetKey(["fraud_rule_set"])

fraud_rules_topic = topic_spec(
    c.FRAUD_RULES_TOPIC,
    topics.FRAUD_RULES,
    [],
    c.GROUP_STREAMING,
    f"{topics.FRAUD_RULES.description}. Written by `darooghe rules set`; read by the fraud job "
    "at its micro-batches.",
    **{"cleanup.policy": topics.FRAUD_RULES.config["cleanup.policy"]},
)

fraud_decisions_topic = topic_spec(
    c.FRAUD_DECISIONS_TOPIC,
    topics.FRAUD_DECISIONS,
    [c.FRAUD_DETECTION_JOB, c.FRAUD_RULES_TOPIC],
    c.GROUP_STREAMING,
    f"{topics.FRAUD_DECISIONS.description}; written in the same Kafka transaction as the alerts "
    "of its micro-batch (exactly once for read_committed consumers).",
)


def versions_table(history) -> dg.TableMetadataValue:
    rows = []
    previous = None
    for r in history.versions:
        rows.append(
            dg.TableRecord(
                {
                    "version": r.version,
                    "effective_from": iso_ms(r.effective_from_ms),
                    "changes": "; ".join(differences(previous, r)),
                    "comment": r.comment,
                }
            )
        )
        previous = r
    return dg.MetadataValue.table(
        rows,
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("version", "int"),
                dg.TableColumn("effective_from", "string"),
                dg.TableColumn("changes", "string"),
                dg.TableColumn("comment", "string"),
            ]
        ),
    )


@dg.asset(
    key=FRAUD_RULE_SET,
    deps=[c.FRAUD_RULES_TOPIC],
    description=(
        "The fraud rules' thresholds, switches and decision scores as versioned data: every "
        "version with the event time it applies from (darooghe.fraud.ruleset). Change them with "
        "`darooghe rules set`; the fraud job applies a new version from its effective time on."
    ),
    group_name=c.GROUP_STREAMING,
    kinds={"kafka", "python"},
    owners=[c.OWNER],
)
def fraud_rule_set(kafka: KafkaResource, settings: SettingsResource) -> dg.MaterializeResult:
    s = dataclasses.replace(settings.get(), kafka_bootstrap=kafka.bootstrap_servers)
    history = load_rule_history(s)
    latest = history.latest
    return dg.MaterializeResult(
        metadata={
            "versions": dg.MetadataValue.int(len(history.versions)),
            "latest_version": dg.MetadataValue.int(latest.version),
            "latest_effective_from": iso_ms(latest.effective_from_ms),
            "history": versions_table(history),
            "latest": dg.MetadataValue.json(latest.to_dict()),
        },
        data_version=dg.DataVersion(str(latest.version)),
    )


def fraud_decisions_sink_asset(
    topic: str = topics.FRAUD_DECISIONS.name,
    key: dg.AssetKey = c.FRAUD_DECISIONS_COLLECTION,
    collection: str = FRAUD_DECISIONS_COLLECTION,
    dead_letter_topic: str = topics.SINK_DEAD_LETTERS.name,
) -> dg.AssetsDefinition:
    """The MongoDB sink of a decisions topic (tests sink a fresh topic into a collection)."""

    @dg.asset(
        key=key,
        deps=[c.FRAUD_DECISIONS_TOPIC],
        description=(
            f"REVIEW/BLOCK decisions of {topic} since the last run, one document per transaction "
            "(_id = transaction_id, the latest decision wins), with event_date/event_hour."
        ),
        group_name=c.GROUP_SINKS,
        kinds={"kafka", "mongodb"},
        owners=[c.OWNER],
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
        metadata={"topic": topic, "collection": collection},
        check_specs=[dead_letter_check_spec(key, topic)],
    )
    def _sink(context: dg.AssetExecutionContext, kafka: KafkaResource, mongo: MongoResource):
        consumer, dead_letters = clients(kafka, collection, dead_letter_topic)
        try:
            with mongo.get_db() as db:
                report = sink_fraud_decisions(
                    db, consumer, topic, collection, context.log.info, dead_letters
                )
                by_decision = {
                    row["_id"]: row["n"]
                    for row in db[collection].aggregate(
                        [{"$group": {"_id": "$decision", "n": {"$sum": 1}}}]
                    )
                }
        finally:
            consumer.close()
        metadata = sink_metadata(report)
        metadata["decisions_by_decision"] = dg.MetadataValue.json(by_decision)
        return dg.MaterializeResult(
            metadata=metadata, check_results=[dead_letter_check(report, dead_letter_topic)]
        )

    return _sink


fraud_decisions = fraud_decisions_sink_asset()
