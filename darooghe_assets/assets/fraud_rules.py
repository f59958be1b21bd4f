"""The fraud rules as data in the asset graph: the rule-set topic, the rule set with its history,
and the decisions topic the fraud job writes with its alerts (its MongoDB sink is with the other
sinks in assets/kafka_to_mongo.py).

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
from darooghe_assets import constants as c
from darooghe_assets.assets.topics import topic_spec
from darooghe_assets.resources import KafkaResource, SettingsResource

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
