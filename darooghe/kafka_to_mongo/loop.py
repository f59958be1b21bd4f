"""The loop every Kafka -> MongoDB sink runs, and what the sinks share.

`run_sink` reads a topic from the offsets it saved last time in bounded chunks (CHUNK_RECORDS
records or CHUNK_BYTES bytes, whichever comes first), turns each record into what it stores, writes
the chunk, and only then saves the offsets after it (in `sink_offsets`). Memory is one chunk
whatever the backlog, and a crash mid-backlog resumes after the last chunk written. A record that
cannot be stored is dead-lettered (dead_letters.py) and counted with the offsets; one run at a time
holds the sink (lock.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.kafka_io import CHUNK_BYTES, CHUNK_RECORDS, message_to_record, read_chunks
from darooghe.kafka_to_mongo.dead_letters import DeadLetters
from darooghe.kafka_to_mongo.lock import sink_lease
from darooghe.mongo_write import replace_by_id
from darooghe.records import Record, json_object

__all__ = ["CHUNK_BYTES", "CHUNK_RECORDS"]  # re-exported: the sinks' default chunk bounds

#: documents per bulk write
WRITE_CHUNK = 1000
#: Consumer settings of a sink: the client's read-ahead queue bounded near one chunk (its default
#: is 64 MB), so a backlog is never buffered in full outside the chunk either.
CONSUMER_CONFIG = {"queued.max.messages.kbytes": 16 * 1024, "fetch.max.bytes": 8 * 1024 * 1024}


class SinkRecordError(ValueError):
    """A record on a sunk topic that does not have the agreed shape."""


@dataclass
class SinkReport:
    topic: str
    collection: str
    records_read: int = 0
    records_stored: int = 0
    documents_written: int = 0
    documents_deleted: int = 0
    dead_lettered: int = 0
    first_dead_letter: str | None = None
    #: every record this sink dead-lettered so far, this run included (kept with its offsets)
    dead_letters_total: int = 0
    chunks: int = 0
    offsets: dict[int, int] = field(default_factory=dict)
    collection_count: int = 0
    seconds: float = 0.0

    def dead_letter(self, reason: str) -> None:
        self.dead_lettered += 1
        self.dead_letters_total += 1
        if self.first_dead_letter is None:
            self.first_dead_letter = reason

    def summary(self) -> str:
        text = (
            f"{self.topic} -> {self.collection}: {self.records_read} records read in "
            f"{self.chunks} chunk(s), {self.records_stored} stored, {self.dead_lettered} "
            f"dead-lettered; {self.documents_written} documents written, {self.documents_deleted} "
            f"deleted, {self.collection_count} in collection ({self.seconds:.1f} s)"
        )
        if self.first_dead_letter:
            text += f"; first dead letter: {self.first_dead_letter}"
        return text


# --- time -----------------------------------------------------------------------------------------
def parse_time(value: object, what: str) -> datetime:
    """An ISO-8601 string (with Z or an offset) or epoch milliseconds, as an aware UTC datetime."""
    if isinstance(value, bool):
        raise SinkRecordError(
            f"{what}: expected an ISO-8601 time or epoch milliseconds, got {value!r}"
        )
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise SinkRecordError(f"{what}: {value!r} ms is not a representable time") from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)  # Python 3.11 reads the "Z" suffix
        except ValueError:
            raise SinkRecordError(f"{what}: {value!r} is not an ISO-8601 time") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise SinkRecordError(f"{what}: expected an ISO-8601 time or epoch milliseconds, got {value!r}")


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _offsets_id(collection: str, topic: str) -> str:
    return f"{collection}|{topic}"


@dataclass
class SinkState:
    """What a sink keeps between runs, in one `sink_offsets` document (so written atomically)."""

    offsets: dict[int, int] = field(default_factory=dict)
    dead_letters: int = 0
    #: sink-specific state that must move with the offsets (the error summary's counts)
    extra: dict = field(default_factory=dict)


def load_state(db: Database, collection: str, topic: str) -> SinkState:
    doc = db[mc.SINK_OFFSETS].find_one({"_id": _offsets_id(collection, topic)}) or {}
    return SinkState(
        offsets={int(p): int(o) for p, o in doc.get("offsets", {}).items()},
        dead_letters=int(doc.get("dead_letters", 0)),
        extra=dict(doc.get("state") or {}),
    )


def save_state(db: Database, collection: str, topic: str, state: SinkState) -> None:
    db[mc.SINK_OFFSETS].replace_one(
        {"_id": _offsets_id(collection, topic)},
        {
            "collection": collection,
            "topic": topic,
            "offsets": {str(p): o for p, o in sorted(state.offsets.items())},
            "dead_letters": state.dead_letters,
            "state": state.extra,
            "updated_at": datetime.now(UTC),
        },
        upsert=True,
    )


def load_offsets(db: Database, collection: str, topic: str) -> dict[int, int]:
    return load_state(db, collection, topic).offsets


def dead_letter_count(db: Database, collection: str, topic: str) -> int:
    """How many records the sink of `topic` into `collection` has dead-lettered, ever."""
    return load_state(db, collection, topic).dead_letters


def run_sink(
    db: Database,
    consumer: Consumer,
    topic: str,
    collection: str,
    convert: Callable[[Record], object],
    write: Callable[[list, SinkReport, SinkState], None],
    dead_letters: DeadLetters,
    log: Callable[[str], None] = print,
    finish: Callable[[SinkReport, SinkState], None] | None = None,
    chunk_records: int = CHUNK_RECORDS,
    chunk_bytes: int = CHUNK_BYTES,
) -> SinkReport:
    """The loop of every sink: chunk by chunk, convert, write, send dead letters, save offsets.

    `convert` turns one record into what `write` stores; any exception it raises is that record's
    fault and dead-letters it (the sink goes on). `write` stores a chunk's results (and may update
    `state.extra`); errors there are the store's and stop the run before the offsets move.
    `finish` runs once after the last chunk, with the lease still held.
    """
    t0 = time.monotonic()
    report = SinkReport(topic=topic, collection=collection)
    with sink_lease(db, _offsets_id(collection, topic)) as lease:
        state = load_state(db, collection, topic)
        report.dead_letters_total = state.dead_letters
        log(f"{topic}: reading from offsets {state.offsets or 'the beginning'}")
        for chunk in read_chunks(consumer, topic, state.offsets, chunk_records, chunk_bytes):
            results = []
            for message in chunk.messages:
                record = message_to_record(message)
                try:
                    results.append(convert(record))
                except Exception as exc:  # noqa: BLE001 - any failure of one record is that record's
                    reason = dead_letter_reason(topic, record, exc)
                    dead_letters.send(topic, message, reason)
                    report.dead_letter(reason)
            report.records_read += len(chunk.messages)
            report.records_stored += len(results)
            write(results, report, state)
            dead_letters.flush()
            lease.renew()  # still ours: no other run wrote meanwhile
            state.offsets = chunk.next_offsets
            state.dead_letters = report.dead_letters_total
            save_state(db, collection, topic, state)
            report.chunks += 1
            if chunk.messages:
                log(
                    f"{topic}: chunk {report.chunks}: {len(chunk.messages)} records, "
                    f"{report.records_read} so far, offsets saved {chunk.next_offsets}"
                )
        if finish is not None:
            finish(report, state)
    report.offsets = state.offsets
    report.collection_count = db[collection].count_documents({})
    report.seconds = time.monotonic() - t0
    log(report.summary())
    return report


def dead_letter_reason(topic: str, record: Record, exc: Exception) -> str:
    """Why a record was refused, naming it: a SinkRecordError says it all, anything else is
    prefixed with the record's coordinates and the exception type."""
    if isinstance(exc, SinkRecordError):
        return str(exc)
    where = f"{topic} partition {record.partition} offset {record.offset}"
    return f"{where}: {type(exc).__name__}: {exc}"


def default_dead_letters(sink: str) -> DeadLetters:
    """Dead letters to darooghe.sink_dead_letters through a producer of the current settings."""
    from confluent_kafka import Producer

    from darooghe.kafka_io import producer_config
    from darooghe.kafka_to_mongo.dead_letters import PRODUCER_CONFIG

    return DeadLetters(Producer(producer_config(None, **PRODUCER_CONFIG)), sink)


def check_storable(value: object, where: str, path: str = "") -> None:
    """Refuse what FerretDB/MongoDB cannot store or chokes on: field names starting with '$' or
    containing '.' or NUL, arrays directly inside arrays (FerretDB stores none), and non-finite
    numbers (a NaN closes FerretDB's connection)."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            if name.startswith("$") or "." in name or "\x00" in name:
                raise SinkRecordError(f"{where}: field name {path + name!r} cannot be stored")
            check_storable(item, where, f"{path}{name}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, list):
                raise SinkRecordError(f"{where}: field {path}{i} is an array inside an array")
            check_storable(item, where, f"{path}{i}.")
    elif isinstance(value, float) and not math.isfinite(value):
        raise SinkRecordError(f"{where}: field {path.rstrip('.') or 'value'} is {value!r}")


def record_object(topic: str, record: Record) -> tuple[str, dict]:
    """A record's JSON object value and where it came from, or SinkRecordError naming the record."""
    where = f"{topic} partition {record.partition} offset {record.offset}"
    return where, json_object(record.value, where, SinkRecordError, what="value is ")


def write_replacements(db: Database, collection: str, documents: list[dict]) -> int:
    """Replace (or insert) each document under its `_id`; the number written."""
    replace_by_id(db[collection], documents, WRITE_CHUNK)
    return len(documents)


def utc(moment: datetime) -> datetime:
    """A stored datetime as aware UTC (clients without tz_aware return naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
