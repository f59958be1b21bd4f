"""Where a micro-batch's output goes: a Kafka topic, or a JSON-lines file (file mode, tests).

Called from `foreachBatch` on the driver with the batch's few output records (alerts or metric
values are a small fraction of the input), so one Spark job per micro-batch suffices and the
records are produced with the project's idempotent producer configuration.

`TopicPublisher` delivers at least once: a micro-batch that fails after writing is re-run from the
checkpoint and writes again; every value carries a deterministic id (`alert_id`, `metric_id`) so
consumers deduplicate or upsert. `TransactionalTopicPublisher` (the fraud alerts and decisions)
writes each batch exactly once for read_committed consumers, and the file publisher skips a batch id it has
already completed, recorded in a marker file beside the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from darooghe.config import Settings
from darooghe.kafka_io import (
    STALL_TIMEOUTS,
    KafkaCallStalled,
    call_with_deadline,
    consumer_config,
    produce_when_room,
    producer_config,
    require_topic,
)

KeyedValue = tuple[str | None, str]


class PublishError(RuntimeError):
    """Records that could not be delivered; the batch fails and is retried from the checkpoint."""


class TopicPublisher:
    def __init__(self, topic: str, settings: Settings) -> None:
        require_topic(topic, settings)
        self.topic = topic
        self.producer = Producer(producer_config(settings, **{"linger.ms": 5}))

    def describe(self) -> str:
        return f"kafka topic {self.topic}"

    def write(self, batch_id: int, records: Sequence[KeyedValue]) -> int:
        errors: list[str] = []

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))

        for key, value in records:
            produce_when_room(
                self.producer,
                self.topic,
                value.encode(),
                None if key is None else key.encode(),
                on_delivery=on_delivery,
            )
        remaining = self.producer.flush(60)
        if errors or remaining:
            raise PublishError(
                f"batch {batch_id} to {self.topic}: {len(errors)} delivery errors, {remaining} "
                f"undelivered" + (f"; first: {errors[0]}" if errors else "")
            )
        return len(records)

    def close(self) -> None:
        self.producer.flush(30)


def checkpoint_epoch(checkpoint_dir: str | Path) -> str | None:
    """The identity of a Spark checkpoint: the query id in its `metadata` file (written when the
    query first starts); None while there is none."""
    try:
        first_line = (Path(checkpoint_dir) / "metadata").read_text().splitlines()[0]
        return str(json.loads(first_line)["id"])
    except (FileNotFoundError, IndexError, ValueError, KeyError):
        return None


def transactional_id_for(workdir: str | Path, job: str = "fraud") -> str:
    """A transactional.id stable for one job's work directory (its checkpoint): a restarted job
    gets the same id, so it fences its killed predecessor; two work directories never share one."""
    digest = hashlib.sha256(str(Path(workdir).resolve()).encode()).hexdigest()[:16]
    return f"darooghe-{job}-sink-{digest}"


#: Tries per batch of a transaction that stalls (kafka_io.STALL_TIMEOUTS x its call timeout).
STALL_ATTEMPTS = 2


class TransactionalTopicPublisher:
    """One Kafka transaction per micro-batch: the batch's records (and its side records, e.g. the
    fraud decisions) become visible together, once, or not at all.

    Why a replayed batch commits nothing new: Spark re-runs a micro-batch whose end it did not
    record (a driver killed after our commit but before its commit log), with the same batch id.
    Each transaction also commits, as offsets of a consumer group named after the transactional.id
    (`send_offsets_to_transaction`), the position after this batch's records on each partition it
    wrote, with the batch id in the offset metadata of partition 0 (the backfill's progress uses the
    same device). Offsets commit atomically with the records, so the committed batch id is exactly
    the last batch whose records are visible. On start, `init_transactions` fences a predecessor
    with the same id and aborts what it left open; the committed batch id is then read back (offset
    commits are read committed), and a `write` with a batch id at or below it is skipped. The
    offsets are real positions in the topic, so the group's lag in monitoring stays near zero.

    Batch ids count from 0 again when the checkpoint is deleted (`--fresh`), so the metadata also
    holds an `epoch`, the checkpoint's identity (Spark's query id, `checkpoint_epoch`): a batch id
    committed under another epoch is not this checkpoint's and skips nothing. `epoch` is a callable
    returning it, or None while the checkpoint is new (then nothing was committed under it).
    """

    def __init__(
        self,
        topic: str,
        settings: Settings,
        transactional_id: str,
        side_topics: Mapping[str, str] | None = None,
        timeout_s: float = 60.0,
        epoch: Callable[[], str | None] | str = "",
        log: Callable[[str], None] = print,
    ) -> None:
        self.partitions = require_topic(topic, settings)
        self.side_topics = dict(side_topics or {})
        for side in self.side_topics.values():
            require_topic(side, settings)
        self.topic = topic
        self.settings = settings
        self.timeout_s = timeout_s
        self.transactional_id = transactional_id
        self.log = log
        self._epoch_of = epoch if callable(epoch) else (lambda: epoch)
        self.epoch = self._epoch_of()
        #: Which _open() the current clients come from (a stalled attempt keeps its own).
        self._generation = 0
        self._open()

    def _open(self) -> None:
        """New clients: the producer fences a predecessor with the same id (aborting what it left
        open, or letting a commit it had started finish), then the committed batch id is read."""
        self._generation += 1
        self._consumer = Consumer(consumer_config(self.transactional_id, self.settings))
        self._group = self._consumer.consumer_group_metadata()
        self.producer = Producer(
            producer_config(
                self.settings, **{"linger.ms": 5, "transactional.id": self.transactional_id}
            )
        )
        self.producer.init_transactions(self.timeout_s)
        self._positions = {
            tp.partition: tp
            for tp in self._consumer.committed(
                [TopicPartition(self.topic, p) for p in range(self.partitions)],
                timeout=self.timeout_s,
            )
        }
        committed = self._metadata_of(self._positions.get(0))
        same = self.epoch is not None and committed.get("epoch") == self.epoch
        self.committed_batch = int(committed.get("batch_id", -1)) if same else -1

    @staticmethod
    def _metadata_of(tp: TopicPartition | None) -> dict:
        try:
            meta = json.loads(tp.metadata)
        except (AttributeError, TypeError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def describe(self) -> str:
        sides = "".join(f" + {t}" for t in self.side_topics.values())
        return f"kafka topic {self.topic}{sides} (transactional.id {self.transactional_id})"

    def write(
        self,
        batch_id: int,
        records: Sequence[KeyedValue],
        side: Mapping[str, Sequence[KeyedValue]] | None = None,
    ) -> int:
        """Write the batch in one transaction; 0 when this batch id was committed before.

        A transaction that has not ended after STALL_TIMEOUTS x timeout_s is taken as stalled
        (`kafka_io.call_with_deadline` says when librdkafka does that). The stalled clients are
        abandoned and new ones opened: their init fences the old producer, so its transaction
        can no longer commit, or lets a commit it had already started finish; the committed batch
        id read back says which, and the batch is written again only if it is not committed.
        """
        if batch_id <= self.committed_batch:
            return 0
        if self.epoch is None:  # a new checkpoint at start: Spark has written its id by now
            self.epoch = self._epoch_of() or ""
        unknown = sorted(set(side or {}) - set(self.side_topics))
        if unknown:
            raise PublishError(f"side output(s) {unknown} not configured; have {self.side_topics}")
        for attempt in range(1, STALL_ATTEMPTS + 1):
            try:
                return call_with_deadline(
                    lambda: self._transaction(batch_id, records, side),
                    STALL_TIMEOUTS * self.timeout_s,
                    f"transaction-{batch_id}",
                )
            except KafkaCallStalled:
                self.log(
                    f"batch {batch_id} to {self.topic}: the transaction stalled for "
                    f"{STALL_TIMEOUTS * self.timeout_s:g} s (attempt {attempt}); reopening the clients"
                )
            self._open()
            if batch_id <= self.committed_batch:
                return 0  # the stalled transaction's commit went through after all
        raise PublishError(
            f"batch {batch_id} to {self.topic}: the transaction stalled {STALL_ATTEMPTS} times"
        )

    def _transaction(
        self,
        batch_id: int,
        records: Sequence[KeyedValue],
        side: Mapping[str, Sequence[KeyedValue]] | None,
    ) -> int:
        # The clients of this attempt: a stalled attempt's thread, if it ever returns, must not
        # touch the clients (or the state) that replaced them.
        producer, group, generation = self.producer, self._group, self._generation
        errors: list[str] = []
        last: dict[int, int] = {}

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
            elif msg.topic() == self.topic:
                last[msg.partition()] = max(last.get(msg.partition(), -1), msg.offset())

        outputs = [(self.topic, records)] + [
            (self.side_topics[name], rows) for name, rows in (side or {}).items()
        ]
        producer.begin_transaction()
        try:
            for topic, rows in outputs:
                for key, value in rows:
                    produce_when_room(
                        producer,
                        topic,
                        value.encode(),
                        None if key is None else key.encode(),
                        on_delivery=on_delivery,
                    )
            remaining = producer.flush(self.timeout_s)
            if errors or remaining:
                raise PublishError(
                    f"batch {batch_id} to {self.topic}: {len(errors)} delivery errors, "
                    f"{remaining} undelivered" + (f"; first: {errors[0]}" if errors else "")
                )
            positions = self._next_positions(batch_id, last)
            producer.send_offsets_to_transaction(positions, group, self.timeout_s)
            producer.commit_transaction(self.timeout_s)
        except (KafkaException, PublishError) as exc:
            try:
                producer.abort_transaction(self.timeout_s)
            except KafkaException:
                pass  # fatal (fenced): the batch fails either way and a restart re-inits
            raise PublishError(
                f"batch {batch_id} to {self.topic}: transaction aborted: {exc}"
            ) from exc
        if generation == self._generation:
            for tp in positions:
                self._positions[tp.partition] = tp
            self.committed_batch = batch_id
        return len(records)

    def _next_positions(self, batch_id: int, last: dict[int, int]) -> list[TopicPartition]:
        """Per partition written: after this batch's records and the commit marker (+2);
        partition 0 always, carrying the batch id."""
        out = []
        for p in sorted({0, *last}):
            before = self._positions.get(p)
            offset = max(before.offset if before is not None else 0, 0)
            if p in last:
                offset = last[p] + 2
            meta = json.dumps({"batch_id": batch_id, "epoch": self.epoch}) if p == 0 else ""
            out.append(TopicPartition(self.topic, p, offset, metadata=meta))
        return out

    def close(self) -> None:
        self.producer.flush(30)
        self._consumer.close()


class JsonLinesPublisher:
    def __init__(self, path: str | Path, marker: str | Path) -> None:
        self.path = Path(path)
        self.marker = Path(marker)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.marker.parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"file {self.path}"

    def last_batch(self) -> int:
        try:
            return int(json.loads(self.marker.read_text())["batch_id"])
        except (FileNotFoundError, ValueError, KeyError):
            return -1

    def write(
        self,
        batch_id: int,
        records: Sequence[KeyedValue],
        side: Mapping[str, Sequence[KeyedValue]] | None = None,
    ) -> int:
        """Append the batch; side records go to files beside it (`side_output_path`)."""
        if batch_id <= self.last_batch():
            return 0  # this batch was completed before a restart
        outputs = [(self.path, records)] + [
            (side_output_path(self.path, name), rows) for name, rows in (side or {}).items()
        ]
        for path, rows in outputs:
            if rows:
                with path.open("a", encoding="utf-8") as fh:
                    for _, value in rows:
                        fh.write(value)
                        fh.write("\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        tmp = self.marker.with_name(self.marker.name + ".tmp")
        tmp.write_text(json.dumps({"batch_id": batch_id, "output": str(self.path)}))
        os.replace(tmp, self.marker)
        return len(records)

    def close(self) -> None:
        pass


def side_output_path(output: str | Path, name: str) -> Path:
    """A file beside an --output file: `metrics.jsonl` + "category_volume" ->
    `metrics.category_volume.jsonl` (one file per metric; the fraud job's late transactions)."""
    output = Path(output)
    suffix = output.suffix or ".jsonl"
    return output.with_name(f"{output.stem if output.suffix else output.name}.{name}{suffix}")
