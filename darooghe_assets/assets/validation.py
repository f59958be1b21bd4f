"""The ingestion validator and its two output topics, as external assets.

The validator is a long-running process outside Dagster (`darooghe validate --source kafka
--detach`); its AssetSpec puts it in the lineage between the raw and the validated topics, and the
`validator_watch` sensor (sensors/validation.py) reports its lag and throughput as observations.
"""

import dagster as dg

from darooghe import topics
from darooghe.validation.service import DEFAULT_GROUP
from darooghe_assets import constants as c
from darooghe_assets.assets.topics import topic_spec

validator = dg.AssetSpec(
    c.VALIDATOR,
    description=(
        "The ingestion validator: reads darooghe.transactions, checks every "
        "record (ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA) and routes it exactly once, in "
        "Kafka transactions, to darooghe.valid_transactions or darooghe.error_logs. Start it "
        "with `darooghe validate --source kafka --detach`, check it with `darooghe validator status`."
    ),
    deps=[c.TRANSACTIONS_TOPIC],
    kinds={"python", "kafka"},
    group_name=c.GROUP_INGEST,
    owners=[c.OWNER],
    metadata={"consumer_group": DEFAULT_GROUP, "input_topic": topics.TRANSACTIONS.name},
)

valid_transactions_topic = topic_spec(
    c.VALID_TRANSACTIONS_TOPIC,
    topics.VALID_TRANSACTIONS,
    [c.VALIDATOR],
    c.GROUP_INGEST,
    f"{topics.VALID_TRANSACTIONS.description}: the normalised transaction JSON in FIELDS order, "
    "timestamp ISO-8601 UTC with ms, key = customer_id, record timestamp = event time. "
    "Written in transactions: read it with isolation.level=read_committed.",
)

error_logs_topic = topic_spec(
    c.ERROR_LOGS_TOPIC,
    topics.ERROR_LOGS,
    [c.VALIDATOR],
    c.GROUP_INGEST,
    f"{topics.ERROR_LOGS.description}: transaction_id (or null), error_codes, errors "
    "(a message per code), source {topic, partition, offset, timestamp}, raw, validated_at. "
    "Written in transactions: read it with isolation.level=read_committed.",
)
