"""The historical backfill: a window of generated history written into darooghe.transactions.

The live generator is a background process (`darooghe generate --mode live --detach`), an AssetSpec
in topics.py; the backfill is a real asset, because writing a past window is a one-off, seeded,
reproducible step. Its metadata records the seed, the window and what was written, per label, and
a window that overlaps one already written to the same topic is skipped (darooghe.generator.backfill
keeps the ledger under $DAROOGHE_HOME), so re-materialising never doubles traffic.

(No `from __future__ import annotations` here: Dagster reads the config class from the signature.)
"""

import dataclasses

import dagster as dg
from pydantic import Field, field_validator

from darooghe import kafka_io, topics
from darooghe.generator import params as gp
from darooghe.generator.backfill import BackfillLedger, backfill, ledger_path
from darooghe.generator.runner import WindowError
from darooghe.schema import format_epoch_ms
from darooghe_assets import constants as c
from darooghe_assets.resources import KafkaResource, SettingsResource
from darooghe_assets.run_config_guards import allowed_topic

_DEFAULTS = gp.GeneratorParams()


class HistoricalBackfillConfig(dg.Config):
    """Generator parameters and the window; ranges are checked at run time."""

    seed: int = Field(default=_DEFAULTS.seed, description="random seed; use the live generator's")
    days: int = Field(
        default=_DEFAULTS.days, description=f"window length, 1..{topics.MAX_HISTORY_DAYS}"
    )
    end: str | None = Field(
        default=None, description="window end, ISO-8601 UTC (default: now truncated to the hour)"
    )
    event_rate: float = Field(default=_DEFAULTS.event_rate, description="mean events per minute")
    peak_factor: float = _DEFAULTS.peak_factor
    fraud_rate: float = _DEFAULTS.fraud_rate
    declined_rate: float = _DEFAULTS.declined_rate
    merchant_count: int = _DEFAULTS.merchant_count
    customer_count: int = _DEFAULTS.customer_count
    err_amount_rate: float = _DEFAULTS.err_amount_rate
    err_time_rate: float = _DEFAULTS.err_time_rate
    err_device_rate: float = _DEFAULTS.err_device_rate
    err_schema_rate: float = _DEFAULTS.err_schema_rate
    topic: str = Field(
        default=topics.TRANSACTIONS.name,
        description="target topic: darooghe.transactions (others only as allowed by the operator)",
    )
    merchants_topic: str = Field(
        default=topics.MERCHANTS.name,
        description="compacted topic receiving the population's merchant register",
    )

    @field_validator("topic")
    @classmethod
    def _topic_allowed(cls, value: str) -> str:
        return allowed_topic("historical_backfill.topic", value, [topics.TRANSACTIONS.name])

    @field_validator("merchants_topic")
    @classmethod
    def _merchants_topic_allowed(cls, value: str) -> str:
        return allowed_topic("historical_backfill.merchants_topic", value, [topics.MERCHANTS.name])

    def generator_params(self) -> gp.GeneratorParams:
        names = {f.name for f in dataclasses.fields(gp.GeneratorParams)}
        return gp.GeneratorParams(**{k: v for k, v in self.model_dump().items() if k in names})


@dg.asset(
    key=c.HISTORICAL_BACKFILL,
    description="Writes a seeded window of generated history (darooghe generate --mode history) "
    "into darooghe.transactions, and the generator's merchant register into darooghe.merchants; "
    "a window already written is skipped.",
    kinds={"python", "kafka"},
    group_name=c.GROUP_INGEST,
    owners=[c.OWNER],
)
def historical_backfill(
    context: dg.AssetExecutionContext,
    config: HistoricalBackfillConfig,
    kafka: KafkaResource,
    settings: SettingsResource,
) -> dg.MaterializeResult:
    try:
        params = config.generator_params()
    except gp.ParameterError as exc:
        raise dg.Failure(description=f"historical_backfill config: {exc}") from None
    s = dataclasses.replace(settings.get(), kafka_bootstrap=kafka.bootstrap_servers)
    for name in (config.topic, config.merchants_topic):
        if name in topics.BY_NAME:
            kafka_io.ensure_topics([topics.BY_NAME[name]], s)
        else:
            kafka_io.require_topic(name, s)
    ledger = BackfillLedger(ledger_path(s))
    try:
        outcome = backfill(
            params,
            config.topic,
            kafka.producer,
            ledger,
            config.end,
            progress=context.log.info,
            merchants_topic=config.merchants_topic,
            make_consumer=kafka.consumer,
        )
    except WindowError as exc:
        raise dg.Failure(description=f"historical_backfill config: {exc}") from None

    window = {
        "seed": params.seed,
        "topic": config.topic,
        "merchants_topic": config.merchants_topic,
        "window_start": format_epoch_ms(outcome.start_ms),
        "window_end": format_epoch_ms(outcome.end_ms),
        "parameters": dg.MetadataValue.json(params.as_dict()),
    }
    if not outcome.written:
        previous = outcome.overlaps or {}
        reason = (
            f"window {format_epoch_ms(outcome.start_ms)} .. {format_epoch_ms(outcome.end_ms)} "
            "overlaps the backfill of "
            f"{previous.get('start')} .. {previous.get('end')} (seed {previous.get('seed')}) already "
            f"written to {config.topic}; nothing written"
        )
        context.log.warning(reason)
        return dg.MaterializeResult(
            metadata={**window, "written": False, "count": 0, "skipped_reason": reason}
        )
    summary = outcome.summary
    labels = summary.label_counts()
    context.log.info(summary.describe())
    return dg.MaterializeResult(
        metadata={
            **window,
            "written": True,
            "count": dg.MetadataValue.int(summary.events),
            "declined": dg.MetadataValue.int(summary.counts.get("declined", 0)),
            "label_counts": dg.MetadataValue.json(labels),
            **{f"label_{name}": dg.MetadataValue.int(n) for name, n in labels.items()},
            "events_per_second": round(summary.rate),
            "resumed_after_events": outcome.resumed_after,
        }
    )
