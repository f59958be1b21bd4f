"""`error_rates_near_expected`: the error rate per code on darooghe.error_logs, against the
rates the generator injects.

Over the last `window_records` input records the validator committed, each code's share of
records is compared with its expected rate (by default the generator's ERR_*_RATE settings, read
the way the generator reads them: environment variable, else default). A code far from its
expectation (see darooghe.validation.error_rates) fails the check with severity WARN: either the
producer changed, or the validator's rules did.
"""

import dagster as dg
from confluent_kafka import KafkaException
from pydantic import field_validator

from darooghe import topics
from darooghe.kafka_io import UnknownTopicError
from darooghe.validation.error_rates import compare_rates, expected_error_rates, window_error_counts
from darooghe.validation.service import DEFAULT_GROUP
from darooghe_assets import constants as c
from darooghe_assets.resources import KafkaResource
from darooghe_assets.run_config_guards import allowed_topic

CHECK_NAME = "error_rates_near_expected"


class ErrorRateCheckConfig(dg.Config):
    input_topic: str = topics.TRANSACTIONS.name
    error_topic: str = topics.ERROR_LOGS.name
    group_id: str = DEFAULT_GROUP

    @field_validator("input_topic")
    @classmethod
    def _input_allowed(cls, value: str) -> str:
        return allowed_topic("input_topic", value, [topics.TRANSACTIONS.name])

    @field_validator("error_topic")
    @classmethod
    def _error_allowed(cls, value: str) -> str:
        return allowed_topic("error_topic", value, [topics.ERROR_LOGS.name])
    #: input records (most recent, committed by the validator) the rates are measured over
    window_records: int = 50_000
    #: below this many records in the window the check passes without judging
    min_records: int = 2_000
    z_threshold: float = 4.0
    relative_tolerance: float = 0.5
    #: code -> expected share of records; empty = the generator's configured rates
    expected_rates: dict[str, float] = {}  # noqa: RUF012 - pydantic copies defaults


@dg.asset_check(
    asset=c.ERROR_LOGS_TOPIC,
    name=CHECK_NAME,
    description="Error rate per code over the latest validated records, against the rates the "
    "generator injects: warns when a code is far off (statistically and materially).",
)
def error_rates_near_expected(
    config: ErrorRateCheckConfig, kafka: KafkaResource
) -> dg.AssetCheckResult:
    expected = dict(config.expected_rates) or expected_error_rates()
    group_consumer = kafka.consumer(group_id=config.group_id)
    reader = kafka.consumer(**{"enable.partition.eof": True})
    try:
        window = window_error_counts(
            group_consumer, reader, config.input_topic, config.error_topic, config.window_records
        )
    except (KafkaException, UnknownTopicError) as exc:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"could not read {config.input_topic} / {config.error_topic}: {exc}",
        )
    finally:
        group_consumer.close()
        reader.close()
    rates = compare_rates(
        window.by_code, window.records, expected, config.z_threshold, config.relative_tolerance
    )
    table = "\n".join(
        ["| code | count | observed | expected | z | |", "|---|---|---|---|---|---|"]
        + [
            f"| {r.code} | {r.count} | {r.observed:.3%} | {r.expected:.3%} | {r.z:+.1f} | "
            f"{'far' if r.flagged else 'ok'} |"
            for r in rates
        ]
    )
    metadata = {
        "window_records": window.records,
        "error_records": window.errors,
        "error_rate": round(window.errors / window.records, 5) if window.records else 0.0,
        "rates": dg.MetadataValue.md(table),
        **{f"{r.code}_observed": round(r.observed, 5) for r in rates},
        **{f"{r.code}_expected": r.expected for r in rates},
    }
    if window.records < config.min_records:
        return dg.AssetCheckResult(
            passed=True,
            metadata=metadata,
            description=f"only {window.records} validated records in the window "
            f"(< {config.min_records}): too few to judge",
        )
    far = [r for r in rates if r.flagged]
    return dg.AssetCheckResult(
        passed=not far,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=(
            "; ".join(r.describe() for r in far)
            if far
            else f"every code within expectations over {window.records} records"
        ),
    )
