"""Dead letters of the Kafka -> MongoDB sinks: records a sink cannot turn into a document.

A sink that stopped on such a record would never get past it, and one that skipped it would lose
it. So the record goes to `darooghe.sink_dead_letters` as it was: its key, value and headers are
the source record's own bytes (once fixed it can be replayed to its topic as is), and headers added
under DLQ_* say where it came from, which sink refused it and why. A sink flushes its dead letters
before it saves its offsets: a crash in between sends one again (same source offset), never loses it.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from darooghe.topics import DEAD_LETTER_MAX_BYTES, SINK_DEAD_LETTERS

DLQ_SINK = "darooghe-dlq-sink"
DLQ_TOPIC = "darooghe-dlq-source-topic"
DLQ_PARTITION = "darooghe-dlq-source-partition"
DLQ_OFFSET = "darooghe-dlq-source-offset"
DLQ_TIMESTAMP = "darooghe-dlq-source-timestamp"
DLQ_ERROR = "darooghe-dlq-error"
#: An error text is cut here (with the original length), so a header never outgrows the record.
MAX_ERROR_CHARS = 2000
#: Producer settings for dead letters: every copy acknowledged, room for a record at the limit.
PRODUCER_CONFIG = {
    "acks": "all",
    "enable.idempotence": True,
    "message.max.bytes": DEAD_LETTER_MAX_BYTES + 64 * 1024,
}


class DeadLetterError(RuntimeError):
    """Dead letters the broker did not take: the sink must not move past their records."""


def bounded(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut, {len(text)} characters]"


class DeadLetters:
    """Sends the records one sink refuses to the dead-letter topic; `flush` before saving offsets."""

    def __init__(self, producer: Producer, sink: str, topic: str = SINK_DEAD_LETTERS.name):
        self.producer = producer
        self.sink = sink
        self.topic = topic
        self.sent = 0
        self._failed: list[str] = []

    def send(self, source_topic: str, message: Message, error: str) -> None:
        _, timestamp = message.timestamp()
        headers = list(message.headers() or []) + [
            (DLQ_SINK, self.sink.encode()),
            (DLQ_TOPIC, source_topic.encode()),
            (DLQ_PARTITION, str(message.partition()).encode()),
            (DLQ_OFFSET, str(message.offset()).encode()),
            (DLQ_TIMESTAMP, str(timestamp).encode()),
            (DLQ_ERROR, bounded(error).encode()),
        ]

        def delivered(err: KafkaError | None, _msg) -> None:
            if err is not None:
                where = f"{source_topic} partition {message.partition()} offset {message.offset()}"
                self._failed.append(f"{where}: {err}")

        self.producer.produce(
            self.topic,
            key=message.key(),
            value=message.value(),
            headers=headers,
            on_delivery=delivered,
        )
        self.producer.poll(0)
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until the broker has every dead letter sent so far, or raise DeadLetterError."""
        left = self.producer.flush(timeout)
        if left:
            raise DeadLetterError(
                f"{left} dead letter(s) for {self.topic} not acknowledged within {timeout:.0f} s"
            )
        if self._failed:
            failed, self._failed = self._failed, []
            raise DeadLetterError(
                f"{len(failed)} dead letter(s) refused by {self.topic}; first: {failed[0]}"
            )
