"""What the fraud sinks share: one document per event under one id, sunk chunk by chunk.

An alert and a decision are both an event of the fraud job: a JSON object with required fields, an
id, and times. Each is stored with its times as datetimes plus `<prefix>_date` ("YYYY-MM-DD") and
`<prefix>_hour` (0-23, UTC), since FerretDB has no date operators and charts group on these fields.
Which delivery of an id is kept is the sink's choice: the first (an alert: first detection wins) or
the last (a decision: a later micro-batch's decision supersedes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import Consumer
from pymongo import ASCENDING
from pymongo.database import Database

from darooghe.kafka_io import CHUNK_RECORDS
from darooghe.kafka_to_mongo.dead_letters import DeadLetters
from darooghe.kafka_to_mongo.loop import (
    SinkRecordError,
    SinkReport,
    SinkState,
    check_storable,
    default_dead_letters,
    parse_time,
    record_object,
    run_sink,
    write_replacements,
)
from darooghe.mongo_write import insert_new
from darooghe.records import Record

_INSERT_CHUNK = 1000


@dataclass(frozen=True)
class EventSink:
    """How one kind of event is stored: its default topic and collection, its fields, its id, its
    times, which delivery of an id is kept, and the indexes its readers need."""

    topic: str
    collection: str
    required: tuple[str, ...]
    id_field: str
    #: fields parsed to datetimes
    times: tuple[str, ...]
    #: time field -> prefix of the `<prefix>_date`/`<prefix>_hour` fields stored beside it
    dated: dict[str, str]
    keep: Literal["first", "last"]
    indexes: tuple[tuple[str, ...], ...]
    optional: tuple[str, ...] = ()
    #: check(where, value) refuses a value the sink does not accept (SinkRecordError)
    check: Callable[[str, dict], None] | None = None

    def document(self, topic: str, record: Record) -> dict:
        """The document of one event record: its `required` (and present `optional`) fields, `_id`
        from `id_field`, the `times` as datetimes with the date/hour fields of `dated`."""
        where, value = record_object(topic, record)
        missing = [f for f in self.required if f not in value]
        if missing:
            raise SinkRecordError(f"{where}: missing field(s) {', '.join(missing)}")
        if self.check is not None:
            self.check(where, value)
        doc = {name: value[name] for name in (*self.required, *self.optional) if name in value}
        for name in self.times:
            doc[name] = parse_time(value[name], f"{where} field {name}")
        for name, prefix in self.dated.items():
            doc[f"{prefix}_date"] = doc[name].strftime("%Y-%m-%d")
            doc[f"{prefix}_hour"] = doc[name].hour
        doc["_id"] = str(value[self.id_field])
        doc["source"] = {"topic": topic, "partition": record.partition, "offset": record.offset}
        check_storable(doc, where)
        return doc

    def sink(
        self,
        db: Database,
        consumer: Consumer,
        topic: str | None = None,
        collection: str | None = None,
        log: Callable[[str], None] = print,
        dead_letters: DeadLetters | None = None,
        chunk_records: int = CHUNK_RECORDS,
    ) -> SinkReport:
        """Sink the records of `topic` that arrived since the last run into `collection` (both
        default to the sink's own; tests sink a fresh topic into a collection of their own)."""
        topic = topic or self.topic
        collection = collection or self.collection
        dead_letters = dead_letters or default_dead_letters(collection)
        for fields in self.indexes:
            db[collection].create_index([(f, ASCENDING) for f in fields])

        def write(documents: list[dict], report: SinkReport, _state: SinkState) -> None:
            if self.keep == "first":
                docs: dict[str, dict] = {}
                for doc in documents:
                    docs.setdefault(doc["_id"], doc)
                # A document already stored is kept, never rewritten.
                written = insert_new(db, collection, docs.values(), _INSERT_CHUNK).written
            else:
                latest = {doc["_id"]: doc for doc in documents}  # topic order: the later one wins
                written = write_replacements(db, collection, list(latest.values()))
            report.documents_written += written

        return run_sink(
            db,
            consumer,
            topic,
            collection,
            lambda record: self.document(topic, record),
            write,
            dead_letters,
            log,
            chunk_records=chunk_records,
        )
