"""Where a micro-batch's output goes: a Kafka topic, or a JSON-lines file (file mode, tests).

Called from `foreachBatch` on the driver with the batch's few output records (alerts or metric
values are a small fraction of the input), so one Spark job per micro-batch suffices and the
records are produced with the project's idempotent producer configuration.

Delivery is at-least-once for both: a micro-batch that fails after writing is re-run from the
checkpoint and writes again. Every value carries a deterministic id (`alert_id`, `metric_id`) so
consumers deduplicate or upsert. The file sink also skips a batch id it has already completed,
recorded in a marker file beside the checkpoint, so a clean restart does not repeat lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Producer

from darooghe.config import Settings
from darooghe.kafka_io import produce_when_room, producer_config, require_topic

KeyedValue = tuple[str | None, str]


class SinkError(RuntimeError):
    """Records that could not be delivered; the batch fails and is retried from the checkpoint."""


class KafkaTopicSink:
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
            raise SinkError(
                f"batch {batch_id} to {self.topic}: {len(errors)} delivery errors, {remaining} "
                f"undelivered" + (f"; first: {errors[0]}" if errors else "")
            )
        return len(records)

    def close(self) -> None:
        self.producer.flush(30)


class JsonLinesSink:
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

    def write(self, batch_id: int, records: Sequence[KeyedValue]) -> int:
        if batch_id <= self.last_batch():
            return 0  # this batch was completed before a restart
        if records:
            with self.path.open("a", encoding="utf-8") as fh:
                for _, value in records:
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
