"""The Kafka topics as external assets, so the lineage starts where the data enters.

Topics are written by processes outside Dagster (the generator, the validator, the streaming jobs);
`AssetSpec`s with kind `kafka` put them in the graph, and sensors report observations on them.
"""

from __future__ import annotations

import dagster as dg

from darooghe import topics
from darooghe_assets import constants as c

LIVE_GENERATOR = dg.AssetKey(["live_generator"])


def topic_spec(
    key: dg.AssetKey,
    topic: topics.Topic,
    deps: list[dg.AssetKey],
    group_name: str,
    description: str | None = None,
    **metadata,
) -> dg.AssetSpec:
    """A Kafka topic in the graph: kind `kafka`, its name and partitions in the metadata."""
    return dg.AssetSpec(
        key,
        description=description or topic.description,
        deps=deps,
        kinds={"kafka"},
        group_name=group_name,
        owners=[c.OWNER],
        metadata={"topic": topic.name, "partitions": topic.partitions, **metadata},
    )


live_generator = dg.AssetSpec(
    LIVE_GENERATOR,
    description="The live transaction generator (darooghe generate --mode live), a background process.",
    kinds={"python"},
    group_name=c.GROUP_INGEST,
    owners=[c.OWNER],
)

transactions_topic = topic_spec(
    c.TRANSACTIONS_TOPIC,
    topics.TRANSACTIONS,
    [LIVE_GENERATOR, c.HISTORICAL_BACKFILL],
    c.GROUP_INGEST,
)

merchants_topic = topic_spec(
    c.MERCHANTS_TOPIC,
    topics.MERCHANTS,
    [LIVE_GENERATOR, c.HISTORICAL_BACKFILL],
    c.GROUP_INGEST,
    **{"cleanup.policy": topics.MERCHANTS.config["cleanup.policy"]},
)
