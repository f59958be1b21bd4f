"""Historical backfills into Kafka that never write the same time window twice.

A backfill writes [end − days, end) into a topic. Writing a window that overlaps one already
written would double the traffic of those hours (and the batch layer's figures), so every
backfill is recorded in a small JSON ledger under $DAROOGHE_HOME/generator/, per topic, and a
backfill whose window overlaps a recorded one is skipped. The ledger is locked for the whole
write, so two backfills started together cannot both write.

Resumable, not "lake de-duplicates": a backfill killed half-way must not write its first half
again when it is run again (its transaction_ids would reach the lake, the streaming jobs and the
metrics twice). So the ledger entry is written at the start (state "writing") and each chunk of
generated events goes out in one Kafka transaction that also commits, as the offset of the
backfill's own progress group, how many events of the window are written. Records and progress
are durable together, so a crash at any point leaves an exact count. Running the same backfill
again (same topic, window, seed and parameters: the same generated stream) regenerates the stream,
skips what the count says is written and continues; when it finishes the entry becomes "done".
Fixing the source was chosen over de-duplicating the lake by transaction_id because duplicates
would reach every consumer of the topic, not only the lake, and de-duplicating an append-only
streaming lake needs state over all history.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from darooghe.config import Settings
from darooghe.generator.engine import Engine, Renderer
from darooghe.generator.params import GeneratorParams
from darooghe.generator.publishers import KafkaPublisher
from darooghe.generator.runner import Progress, Summary, parse_end, run_history
from darooghe.schema import format_epoch_ms
from darooghe.topics import LABEL_HEADER, MERCHANTS


def ledger_path(settings: Settings) -> Path:
    return settings.home / "generator" / "backfills.json"


class BackfillLedger:
    """The windows already written, per topic: a JSON list of entries."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[BackfillLedger]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def entries(self) -> list[dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as exc:
            raise ValueError(f"backfill ledger {self.path} is not JSON ({exc}); fix or remove it") from None
        return list(data)

    def overlapping(self, topic: str, start_ms: int, end_ms: int) -> dict | None:
        for entry in self.entries():
            if entry["topic"] == topic and entry["start_ms"] < end_ms and start_ms < entry["end_ms"]:
                return entry
        return None

    def add(self, entry: dict) -> None:
        self._write(self.entries() + [entry])

    def update(self, run_id: str, **fields) -> None:
        """Change the fields of the entry of backfill `run_id`."""
        self._write([{**e, **fields} if e.get("id") == run_id else e for e in self.entries()])

    def _write(self, entries: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(self.path)


def backfill_id(topic: str, start_ms: int, end_ms: int, params: GeneratorParams) -> str:
    """What identifies one backfill's stream: the same id generates the same records."""
    key = json.dumps([topic, start_ms, end_ms, params.as_dict()], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def progress_group(run_id: str) -> str:
    """The consumer group whose committed offset counts the events a backfill has written."""
    return f"darooghe-backfill-{run_id}"


class TransactionalKafkaPublisher(KafkaPublisher):
    """A KafkaPublisher that writes each chunk in one transaction, with the count of events written so
    far committed in it (offset of the progress group on partition 0 of the topic), and skips
    the events an earlier, interrupted run of the same backfill already committed."""

    def __init__(
        self,
        topic: str,
        renderer: Renderer,
        make_producer: Callable[..., Producer],
        label_header: str,
        run_id: str,
        consumer: Consumer,
        timeout_s: float = 120.0,
        merchants_topic: str = MERCHANTS.name,
    ) -> None:
        group = progress_group(run_id)
        self.timeout_s = timeout_s
        self._progress = TopicPartition(topic, 0)
        self._consumer = consumer
        self._metadata = consumer.consumer_group_metadata()

        def transactional(**overrides):
            return make_producer(**overrides, **{"transactional.id": group})

        super().__init__(topic, renderer, transactional, label_header, merchants_topic)
        # Fences an interrupted run of this backfill and aborts what it left open.
        self.producer.init_transactions(timeout_s)
        (committed,) = consumer.committed([self._progress], timeout=timeout_s)
        #: events of the window already written by an earlier run
        self.skip = max(committed.offset, 0)
        self.seen = 0

    def write(self, batch, record_ts) -> None:
        n, start = len(batch), self.seen
        self.seen += n
        if n == 0 or self.seen <= self.skip:
            return  # empty, or committed by an earlier run
        if start < self.skip:  # chunks are the same on every run, so progress is on a boundary
            raise RuntimeError(
                f"backfill progress {self.skip} is inside a chunk ({start}..{self.seen}): the "
                "generated stream changed since the interrupted run"
            )
        self.producer.begin_transaction()
        super().write(batch, record_ts)
        self.producer.send_offsets_to_transaction(
            [TopicPartition(self.topic, 0, self.seen)], self._metadata, self.timeout_s
        )
        self.producer.commit_transaction(self.timeout_s)  # delivers the chunk or raises

    def close(self) -> None:
        super().close()
        self._consumer.close()


@dataclass
class BackfillOutcome:
    written: bool
    start_ms: int
    end_ms: int
    summary: Summary | None = None
    overlaps: dict | None = None  # the recorded backfill that made this one skip
    #: events an interrupted earlier run had already written (0: a fresh backfill)
    resumed_after: int = 0


def backfill(
    params: GeneratorParams,
    topic: str,
    make_producer: Callable[..., Producer],
    ledger: BackfillLedger,
    end: str | None = None,
    progress: Progress | None = None,
    merchants_topic: str = MERCHANTS.name,
    *,
    make_consumer: Callable[..., Consumer],
) -> BackfillOutcome:
    """Write params.days of history ending at `end` (default: now truncated to the hour), and the
    population's merchant register into `merchants_topic` (generator.publishers.KafkaPublisher), or finish
    the interrupted run of the same backfill. `make_consumer(group_id=...)` builds the consumer
    that reads and commits the progress count."""
    end_ms = parse_end(end)
    start_ms = end_ms - params.days * 86_400_000
    run_id = backfill_id(topic, start_ms, end_ms, params)
    with ledger.locked():
        previous = ledger.overlapping(topic, start_ms, end_ms)
        unfinished = previous is not None and previous.get("state") == "writing"
        if previous is not None and not (unfinished and previous.get("id") == run_id):
            return BackfillOutcome(False, start_ms, end_ms, overlaps=previous)
        if previous is None:
            ledger.add(
                {
                    "id": run_id,
                    "state": "writing",
                    "topic": topic,
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                    "start": format_epoch_ms(start_ms),
                    "end": format_epoch_ms(end_ms),
                    "seed": params.seed,
                    "params": params.as_dict(),
                    "started_at": format_epoch_ms(int(time.time() * 1000)),
                }
            )
        engine = Engine(params)
        renderer = Renderer(engine.population, LABEL_HEADER)
        publisher = TransactionalKafkaPublisher(
            topic,
            renderer,
            make_producer,
            LABEL_HEADER,
            run_id,
            make_consumer(group_id=progress_group(run_id)),
            merchants_topic=merchants_topic,
        )
        try:
            summary = run_history(engine, publisher, start_ms, end_ms, progress)
        finally:
            publisher.close()
        ledger.update(
            run_id,
            state="done",
            events=summary.events,
            written_at=format_epoch_ms(int(time.time() * 1000)),
        )
    return BackfillOutcome(True, start_ms, end_ms, summary=summary, resumed_after=publisher.skip)
