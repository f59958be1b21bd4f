"""The transaction history lake as an asset: `darooghe.valid_transactions` -> Parquet by event date.

Each materialisation is one availableNow run of darooghe.batch.lake.ingest: it appends exactly the
records that arrived since the previous one (the Kafka offsets are in the checkpoint), so a
re-materialisation with nothing new adds nothing.

Where the lake is: the asset's config (source topic, lake and checkpoint directories; empty means
the defaults under $DAROOGHE_HOME). The assets and checks downstream read the lake the latest
materialisation of `transactions_lake` wrote — its `lake_dir` metadata — so a lake built elsewhere
(a test, a replay into another topic) is analysed where it is, and the default applies only
before the first materialisation.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
from dagster_pyspark import PySparkResource
from pydantic import Field, field_validator

from darooghe import topics
from darooghe.batch.lake import (
    LAKE_MAX_OFFSETS_PER_TRIGGER,
    IngestResult,
    ingest,
    lake_checkpoint_dir,
    lake_stats,
    read_lake,
)
from darooghe.config import Settings
from darooghe_assets import constants as c
from darooghe_assets.resources import KafkaResource, SettingsResource
from darooghe_assets.run_config_guards import allowed_path, allowed_topic


class LakeConfig(dg.Config):
    source_topic: str = Field(
        default=topics.VALID_TRANSACTIONS.name, description="Kafka topic of valid transactions"
    )
    lake_dir: str = Field(default="", description="lake directory; empty: $DAROOGHE_HOME/lake")
    checkpoint_dir: str = Field(
        default="",
        description="streaming checkpoint; empty: $DAROOGHE_HOME/checkpoints/transactions_lake",
    )
    max_offsets_per_trigger: int = Field(
        default=LAKE_MAX_OFFSETS_PER_TRIGGER,
        ge=0,
        description="records per micro-batch (0: everything available in one)",
    )

    @field_validator("source_topic")
    @classmethod
    def _topic_allowed(cls, value: str) -> str:
        return allowed_topic("transactions_lake.source_topic", value, [topics.VALID_TRANSACTIONS.name])

    @field_validator("lake_dir", "checkpoint_dir")
    @classmethod
    def _path_allowed(cls, value: str, info) -> str:
        return allowed_path(info.field_name, value)

    def lake_path(self, settings: Settings) -> Path:
        return Path(self.lake_dir) if self.lake_dir else settings.lake_dir

    def checkpoint_path(self, settings: Settings) -> Path:
        if self.checkpoint_dir:
            return Path(self.checkpoint_dir)
        return lake_checkpoint_dir(settings.checkpoints_dir)


def lake_location(instance: dg.DagsterInstance, settings: Settings) -> Path:
    """The lake directory of the latest `transactions_lake` materialisation (default before any)."""
    event = instance.get_latest_materialization_event(c.TRANSACTIONS_LAKE)
    materialization = event.asset_materialization if event else None
    if materialization is not None and "lake_dir" in materialization.metadata:
        return Path(str(materialization.metadata["lake_dir"].value))
    return settings.lake_dir


def lake_frame(context, pyspark: PySparkResource, settings: SettingsResource):
    """The lake DataFrame for an asset or check of the batch layer, and where it was read."""
    location = lake_location(context.instance, settings.get())
    return read_lake(pyspark.spark_session, location), location


NO_DATA_LOSS = "no_data_loss"


def data_loss_check(result: IngestResult, topic: str) -> dg.AssetCheckResult:
    """Fails when records of `topic` were deleted (retention) before this run could read them."""
    lost = sum(result.offsets_lost.values())
    facts = {
        "offsets_lost": lost,
        "by_partition": dg.MetadataValue.json({str(p): n for p, n in result.offsets_lost.items()}),
    }
    if not lost:
        return dg.AssetCheckResult(check_name=NO_DATA_LOSS, passed=True, metadata=facts)
    return dg.AssetCheckResult(
        check_name=NO_DATA_LOSS,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{lost} offset(s) of {topic} were deleted by retention before the lake read "
        "them (transaction markers included): those records are missing from the lake",
        metadata=facts,
    )


@dg.asset(
    key=c.TRANSACTIONS_LAKE,
    check_specs=[
        dg.AssetCheckSpec(
            NO_DATA_LOSS,
            asset=c.TRANSACTIONS_LAKE,
            description="Fails when the topic deleted records before the lake read them.",
        )
    ],
    deps=[c.VALID_TRANSACTIONS_TOPIC],
    group_name=c.GROUP_LAKE,
    kinds={"spark", "parquet"},
    owners=[c.OWNER],
    # ingested at least hourly (darooghe_assets/schedules.py)
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=2), warn_window=dt.timedelta(minutes=90)
    ),
    description=(
        "Valid transactions from darooghe.valid_transactions (read_committed) in Parquet under "
        "$DAROOGHE_HOME/lake, partitioned by event date (UTC); Structured Streaming, trigger "
        "availableNow, checkpointed: each materialisation appends only what is new, exactly once."
    ),
)
def transactions_lake(
    context: dg.AssetExecutionContext,
    config: LakeConfig,
    pyspark: PySparkResource,
    kafka: KafkaResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    spark = pyspark.spark_session
    paths = settings.get()
    lake_dir = config.lake_path(paths)
    checkpoint_dir = config.checkpoint_path(paths)
    result = ingest(
        spark,
        kafka.bootstrap_servers,
        config.source_topic,
        lake_dir,
        checkpoint_dir,
        max_offsets_per_trigger=config.max_offsets_per_trigger or None,
        log=context.log.info,
    )
    stats = lake_stats(read_lake(spark, lake_dir))
    return dg.MaterializeResult(
        metadata={
            **result.as_metadata(),
            **stats.as_metadata(),
            "dagster/row_count": stats.rows,
            "rows_added": result.rows_written,
            "lake_dir": str(lake_dir),
            "source_topic": config.source_topic,
            "checkpoint_dir": str(checkpoint_dir),
        },
        check_results=[data_loss_check(result, config.source_topic)],
    )
