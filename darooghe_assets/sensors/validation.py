"""`validator_watch`: observations of the ingestion validator, its lag and its throughput.

Two sources, reported together as AssetObservations (SensorResult(asset_events=...)), the way
Dagster observes a streaming process that runs outside it:
- Kafka: the validator group's committed offsets against the input topic's end (the consumer lag,
  right even when no validator runs), and the growth of the committed offsets between two
  evaluations (throughput, kept in the cursor); the end offsets of the two output topics.
- The progress files each validator instance rewrites every few seconds
  ($DAROOGHE_HOME/metrics/validator/<group>.<instance>.json): which instances are alive, their own
  rate, counts since they started (in = valid + errors, by code) and transactions committed/aborted.
And a restart: a background instance that is enabled (`darooghe validate --detach`) but has no
live process is dead, and the sensor requests a run of `restart_validator_job` for it, as the
streaming jobs' watch sensors do (darooghe.validation.supervision; the job: jobs/validation.py).
An instance stopped with `darooghe validator stop` stays stopped.
"""

import json
import time

import dagster as dg
import psutil
from confluent_kafka import KafkaException

from darooghe import topics
from darooghe.config import Settings
from darooghe.kafka_io import partition_offsets
from darooghe.schema import ERROR_CODES
from darooghe.validation.progress import consumer_group_lag, read_progress
from darooghe.validation.service import DEFAULT_GROUP
from darooghe.validation.supervision import dead_instances
from darooghe_assets import constants as c
from darooghe_assets.jobs.validation import restart_validator_job
from darooghe_assets.resources import KafkaResource, SettingsResource

WATCH_INTERVAL_S = 30
#: One restart request per dead instance and this many seconds (a restart that did not take is
#: asked for again later, not on every evaluation).
RESTART_EVERY_S = 300
#: a progress file older than this belongs to an instance that stopped reporting
STALE_AFTER_S = 30


def restart_requests(settings: Settings, now: float | None = None) -> list[dg.RunRequest]:
    """A restart request for every enabled validator instance without a live process."""
    now = time.time() if now is None else now
    return [
        dg.RunRequest(
            run_key=f"restart-validator-{instance}-{int(now // RESTART_EVERY_S)}",
            run_config={"ops": {"restart_validator_op": {"config": {"instance": instance}}}},
            tags={"darooghe/validator-instance": instance},
        )
        for instance in dead_instances(settings)
    ]


def _end_offsets(consumer, topic: str) -> dict[int, int]:
    return {p: o.high for p, o in partition_offsets(consumer, topic).items()}


def _alive(report: dict, now: float) -> bool:
    fresh = now - report.get("updated_at_ms", 0) / 1000 <= STALE_AFTER_S
    pid = report.get("pid")
    return report.get("state") == "running" and fresh and bool(pid) and psutil.pid_exists(pid)


def _topic_meta(ends: dict[int, int], last_total: int | None, elapsed: float | None) -> dict:
    """An output topic's end offsets, and their growth per second since the last evaluation."""
    total = sum(ends.values())
    meta = {
        "end_offsets": total,
        "end_offset_by_partition": dg.MetadataValue.json({str(p): h for p, h in ends.items()}),
    }
    if elapsed and last_total is not None:
        meta["growth_per_s"] = round((total - last_total) / elapsed, 1)
    return meta


def validator_observations(
    kafka: KafkaResource,
    settings: Settings,
    cursor: str | None,
    input_topic: str,
    valid_topic: str,
    error_topic: str,
    group_id: str,
    now: float | None = None,
) -> tuple[list[dg.AssetObservation], str, str]:
    """The observations of one evaluation, the new cursor and a one-line summary."""
    now = time.time() if now is None else now
    last = json.loads(cursor) if cursor else {}
    consumer = kafka.consumer(group_id=group_id)
    try:
        lag = consumer_group_lag(consumer, input_topic)
        valid_ends = _end_offsets(consumer, valid_topic)
        error_ends = _end_offsets(consumer, error_topic)
    finally:
        consumer.close()
    committed = sum(p["committed"] or 0 for p in lag.values())
    total_lag = sum(p["lag"] for p in lag.values())
    elapsed = now - last["t"] if "t" in last else None
    throughput = (
        round((committed - last.get("committed", committed)) / elapsed, 1) if elapsed else None
    )

    reports = read_progress(settings, group_id)
    live = [r for r in reports if _alive(r, now)]
    records_in = sum(r.get("records_in", 0) for r in reports)
    errors = sum(r.get("errors", 0) for r in reports)
    by_code = {
        code: sum(r.get("by_code", {}).get(code, 0) for r in reports) for code in ERROR_CODES
    }
    status = "running" if live else ("behind, not running" if total_lag else "not running")
    validator_meta = {
        "status": status,
        "instances_running": len(live),
        "instances": ", ".join(sorted(str(r.get("instance")) for r in live)) or "none",
        "consumer_group": group_id,
        "consumer_lag": total_lag,
        "lag_by_partition": dg.MetadataValue.json({str(p): v["lag"] for p, v in lag.items()}),
        "committed_offsets": committed,
        "reported_rate_per_s": round(sum(r.get("rate_per_s") or 0 for r in live), 1),
        "records_in": records_in,
        "valid": sum(r.get("valid", 0) for r in reports),
        "errors": errors,
        "error_rate": round(errors / records_in, 5) if records_in else 0.0,
        "errors_by_code": dg.MetadataValue.json(by_code),
        "transactions_committed": sum(r.get("transactions_committed", 0) for r in reports),
        "transactions_aborted": sum(r.get("transactions_aborted", 0) for r in reports),
    }
    if throughput is not None:
        validator_meta["throughput_per_s"] = throughput

    events = [
        dg.AssetObservation(asset_key=c.VALIDATOR, metadata=validator_meta),
        dg.AssetObservation(
            asset_key=c.VALID_TRANSACTIONS_TOPIC,
            metadata=_topic_meta(valid_ends, last.get("valid_end"), elapsed),
        ),
        dg.AssetObservation(
            asset_key=c.ERROR_LOGS_TOPIC,
            metadata=_topic_meta(error_ends, last.get("error_end"), elapsed),
        ),
    ]
    new_cursor = json.dumps(
        {
            "t": now,
            "committed": committed,
            "valid_end": sum(valid_ends.values()),
            "error_end": sum(error_ends.values()),
        }
    )
    summary = (
        f"validator {status}: {len(live)} instance(s), lag {total_lag}, "
        f"throughput {throughput if throughput is not None else '?'}/s"
    )
    return events, new_cursor, summary


def validator_watch_sensor(
    name: str = "validator_watch",
    input_topic: str = topics.TRANSACTIONS.name,
    valid_topic: str = topics.VALID_TRANSACTIONS.name,
    error_topic: str = topics.ERROR_LOGS.name,
    group_id: str = DEFAULT_GROUP,
    minimum_interval_seconds: int = WATCH_INTERVAL_S,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=name,
        job=restart_validator_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"Observes the validator (group {group_id}): consumer lag and throughput from "
        f"Kafka, instances and counts from their progress files, and the output topics' ends; "
        f"restarts a background instance that died.",
    )
    def _watch(
        context: dg.SensorEvaluationContext, kafka: KafkaResource, settings: SettingsResource
    ):
        restarts = restart_requests(settings.get())
        for request in restarts:
            context.log.warning(
                f"validator {request.tags['darooghe/validator-instance']} is dead (enabled, no "
                "process): requesting a restart"
            )
        try:
            events, cursor, summary = validator_observations(
                kafka,
                settings.get(),
                context.cursor,
                input_topic,
                valid_topic,
                error_topic,
                group_id,
            )
        except (KafkaException, LookupError) as exc:
            if restarts:
                return dg.SensorResult(run_requests=restarts)
            return dg.SkipReason(f"Kafka not readable for the validator's topics: {exc}")
        context.log.info(summary)
        return dg.SensorResult(run_requests=restarts, asset_events=events, cursor=cursor)

    return _watch


validator_watch = validator_watch_sensor()
