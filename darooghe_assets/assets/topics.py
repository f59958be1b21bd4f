"""The Kafka topics as external assets, so the lineage starts where the data enters.

Topics are written by processes outside Dagster (the generator, the validator, the streaming jobs);
`AssetSpec`s with kind `kafka` put them in the graph, and sensors report observations on them.
"""

from __future__ import annotations

import dagster as dg

from darooghe import topics
from darooghe_assets import constants as c

LIVE_GENERATOR = dg.AssetKey(["live_generator"])

live_generator = dg.AssetSpec(
    LIVE_GENERATOR,
    description="The live transaction generator (darooghe generate --mode live), a background process.",
    kinds={"python"},
    group_name=c.GROUP_INGEST,
    owners=[c.OWNER],
)

transactions_topic = dg.AssetSpec(
    c.TRANSACTIONS_TOPIC,
    description=topics.TRANSACTIONS.description,
    deps=[LIVE_GENERATOR, c.HISTORICAL_BACKFILL],
    kinds={"kafka"},
    group_name=c.GROUP_INGEST,
    owners=[c.OWNER],
    metadata={"topic": topics.TRANSACTIONS.name, "partitions": topics.TRANSACTIONS.partitions},
)

merchants_topic = dg.AssetSpec(
    c.MERCHANTS_TOPIC,
    description=topics.MERCHANTS.description,
    deps=[LIVE_GENERATOR, c.HISTORICAL_BACKFILL],
    kinds={"kafka"},
    group_name=c.GROUP_INGEST,
    owners=[c.OWNER],
    metadata={
        "topic": topics.MERCHANTS.name,
        "partitions": topics.MERCHANTS.partitions,
        "cleanup.policy": topics.MERCHANTS.config["cleanup.policy"],
    },
)
