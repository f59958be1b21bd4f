"""What every Kafka -> MongoDB sink asset reports: its metadata and its dead-letter check.

A sink moves past a record it cannot store and sends it to the dead-letter topic (darooghe.sinks),
so the run succeeds; the `no_dead_letters` check is what makes such records visible: it fails while
the sink has dead-lettered any record, with the count and the first reason.
"""

from __future__ import annotations

import dagster as dg

from darooghe import sinks
from darooghe.sink_dead_letters import PRODUCER_CONFIG, DeadLetters
from darooghe.topics import SINK_DEAD_LETTERS
from darooghe_assets.resources import KafkaResource

NO_DEAD_LETTERS = "no_dead_letters"


def dead_letter_check_spec(key: dg.AssetKey, topic: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        NO_DEAD_LETTERS,
        asset=key,
        description=f"Fails while records of {topic} that this sink could not store sit in the "
        "dead-letter topic (source, error and the record as it was in their headers).",
    )


def clients(kafka: KafkaResource, sink: str, dead_letter_topic: str = SINK_DEAD_LETTERS.name):
    """The sink's consumer (read-ahead bounded near one chunk) and its dead-letter writer."""
    consumer = kafka.consumer(**sinks.CONSUMER_CONFIG)
    return consumer, DeadLetters(kafka.producer(**PRODUCER_CONFIG), sink, dead_letter_topic)


def sink_metadata(report: sinks.SinkReport) -> dict:
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
    report: sinks.SinkReport, dead_letter_topic: str = SINK_DEAD_LETTERS.name
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
