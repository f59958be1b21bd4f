"""Where generated events go: a Kafka topic, or a record file (darooghe.records format).

Both carry the same record: key = customer_id, value = the event JSON, timestamp = the record
timestamp the caller gives (the event time in history mode, the current time in live mode), and
the `darooghe-label` header for injected fraud and invalid events. A record file replayed with
`darooghe topics replay` gives the topic the Kafka publisher would have written.

Before its first event each publisher writes the population's merchant register as reference records
(darooghe.merchant_reference): the Kafka publisher into the compacted merchants topic, the file
publisher into a side file next to its output. The merchants' attributes (business hours, city, contract)
thus travel with the transactions that name them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
from confluent_kafka import KafkaException, Producer

from darooghe import merchant_reference
from darooghe.generator.engine import Batch, Renderer
from darooghe.kafka_io import produce_when_room
from darooghe.records import Record, write_record_file
from darooghe.topics import MERCHANTS


def merchant_records(renderer: Renderer, record_ts: np.ndarray) -> list[Record]:
    """The population's reference records, stamped with the run's first record timestamp."""
    return merchant_reference.reference_records(
        renderer.population.merchants(), int(record_ts[0])
    )


class Publisher(Protocol):
    def write(self, batch: Batch, record_ts: np.ndarray) -> None: ...
    def tick(self) -> None: ...  # cheap housekeeping between live chunks
    def flush(self) -> None: ...
    def close(self) -> None: ...


class FilePublisher:
    """Record-file lines, written in large blocks (one per chunk) by a writer thread.

    The write system call releases the GIL, so a thread writes the previous block while the
    engine draws the next one; blocks go through a short queue in order, so the bytes are the
    same as a plain sequential write. A write error is raised by the next write, flush or close.
    """

    def __init__(self, path: str | Path, renderer: Renderer) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.renderer = renderer
        self.reference_path = merchant_reference.side_file(self.path)
        self._reference_written = False
        self._fh = self.path.open("wb")
        self._blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_blocks, name="file-publisher", daemon=True)
        self._thread.start()
        self.written = 0

    def _write_blocks(self) -> None:
        while True:
            block = self._blocks.get()
            try:
                if block is None:
                    return
                if self._error is None:
                    self._fh.write(block)
                    self._fh.flush()
            except BaseException as exc:  # noqa: BLE001 - handed to the producing thread
                self._error = exc
            finally:
                self._blocks.task_done()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise OSError(f"writing {self.path}: {self._error}") from self._error

    def write(self, batch: Batch, record_ts: np.ndarray) -> None:
        self._raise_error()
        if len(batch) == 0:
            return
        if not self._reference_written:
            write_record_file(merchant_records(self.renderer, record_ts), self.reference_path)
            self._reference_written = True
        lines = self.renderer.record_lines(batch, record_ts)
        lines.append("")  # the last line's newline
        self._blocks.put("\n".join(lines).encode("utf-8"))
        self.written += len(lines) - 1

    def tick(self) -> None:
        self.flush()  # live mode: readers (tail -f) see each second's events

    def flush(self) -> None:
        self._blocks.join()
        self._raise_error()

    def close(self) -> None:
        if self._thread.is_alive():
            self._blocks.put(None)
            self._thread.join()
        if not self._fh.closed:
            self._fh.close()
        self._raise_error()


class KafkaPublisher:
    """Produces to one topic; delivery failures are collected and raised by flush()."""

    #: On top of kafka_io.producer_config (idempotent, acks=all, lz4, 1 MB batches): only failed
    #: deliveries call back into Python, and batches may hold 100k messages.
    PRODUCER_OVERRIDES: ClassVar[dict[str, object]] = {
        "delivery.report.only.error": True,
        "batch.num.messages": 100_000,
        "linger.ms": 50,
    }

    def __init__(
        self,
        topic: str,
        renderer: Renderer,
        make_producer: Callable[..., Producer],
        label_header: str,
        merchants_topic: str = MERCHANTS.name,
    ) -> None:
        """`make_producer(**overrides)` builds the producer (kafka_io.producer_config + overrides)."""
        self.topic = topic
        self.merchants_topic = merchants_topic
        self._reference_written = False
        self.renderer = renderer
        self.label_header = label_header
        self.errors: list[str] = []
        self.error_count = 0
        self.written = 0
        self.producer = make_producer(**self.PRODUCER_OVERRIDES, on_delivery=self._on_delivery)

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self.error_count += 1
            if len(self.errors) < 5:
                self.errors.append(str(err))

    def _write_reference(self, record_ts: np.ndarray) -> None:
        """Produce the merchant register and wait for it: its errors are not the events' errors."""
        records = merchant_records(self.renderer, record_ts)
        for r in records:
            produce_when_room(self.producer, self.merchants_topic, r.value, r.key, r.timestamp)
        remaining = self.producer.flush(60.0)
        if remaining or self.error_count:
            raise KafkaException(
                f"publishing {len(records)} merchant reference records to "
                f"{self.merchants_topic!r}: {self.error_count} delivery errors, {remaining} "
                "undelivered after 60 s" + (f"; first error: {self.errors[0]}" if self.errors else "")
            )
        self._reference_written = True

    def write(self, batch: Batch, record_ts: np.ndarray) -> None:
        if len(batch) == 0:
            return
        if not self._reference_written:
            self._write_reference(record_ts)
        values = self.renderer.values(batch)
        keys = self.renderer.population.customer_ids[batch.customer].tolist()
        labels = batch.labels()
        producer, poll = self.producer, self.producer.poll
        topic, header = self.topic, self.label_header
        for i, (value, key, ts, label) in enumerate(zip(values, keys, record_ts.tolist(), labels)):
            headers = None if label is None else [(header, label.encode())]
            produce_when_room(producer, topic, value, key, ts, headers)
            if i % 20_000 == 0:
                poll(0)
        self.written += len(values)

    def tick(self) -> None:
        self.producer.poll(0)
        if self.error_count:
            self.flush()  # raises with the first delivery error

    def flush(self, timeout: float = 120.0) -> None:
        remaining = self.producer.flush(timeout)
        if remaining or self.error_count:
            raise KafkaException(
                f"producing to {self.topic!r}: {self.error_count} delivery errors, {remaining} "
                f"records undelivered after {timeout:.0f} s"
                + (f"; first error: {self.errors[0]}" if self.errors else "")
            )

    def close(self) -> None:
        self.flush()
