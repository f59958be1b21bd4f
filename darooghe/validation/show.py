"""`darooghe validate --show-one`: one consumed message, pretty-printed, with its verdict.

Reads with a throw-away consumer group and commits nothing, so it never moves the validator. By
default it shows the next record the validator group has not processed yet; when the group is
caught up, the most recent record of the topic; `--partition/--offset` pick one exactly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from darooghe.config import Settings
from darooghe.kafka_io import consumer_config, partition_offsets, require_topic
from darooghe.records import decode_bytes
from darooghe.schema import format_epoch_ms
from darooghe.topics import ERROR_LOGS, VALID_TRANSACTIONS
from darooghe.validation.decision import ErrorLog, decide


def pick_position(settings: Settings, topic: str, group_id: str) -> tuple[int, int] | None:
    """(partition, offset) of the group's next unprocessed record, else of the newest record."""
    consumer = Consumer(consumer_config(group_id, settings))  # never subscribes: no group join
    try:
        newest: tuple[int, int] | None = None
        for p, o in partition_offsets(consumer, topic, committed=True).items():
            if o.high <= o.low:
                continue
            start = o.low if o.committed is None else o.committed
            if start < o.high:
                return p, max(start, o.low)
            if newest is None or o.high - 1 > newest[1]:
                newest = (p, o.high - 1)
        return newest
    finally:
        consumer.close()


def show_one(
    settings: Settings,
    topic: str,
    group_id: str,
    partition: int | None = None,
    offset: int | None = None,
    timeout: float = 15.0,
    out: Callable[[str], None] = print,
    valid_topic: str = VALID_TRANSACTIONS.name,
    error_topic: str = ERROR_LOGS.name,
) -> int:
    """Print one message and its verdict; returns 0, or 1 when no message arrived in time."""
    n = require_topic(topic, settings)
    if partition is not None and not 0 <= partition < n:
        raise ValueError(
            f"--partition {partition} is out of range: {topic} has partitions 0..{n - 1}"
        )
    if partition is None:
        picked = pick_position(settings, topic, group_id)
        if picked is None:
            out(f"{topic} is empty; waiting up to {timeout:g} s for a new record")
            assignment = [TopicPartition(topic, p, OFFSET_END) for p in range(n)]
        else:
            partition, offset = picked
    if partition is not None:
        assignment = [TopicPartition(topic, partition, 0 if offset is None else offset)]
    consumer = Consumer(consumer_config(None, settings, **{"enable.partition.eof": False}))
    try:
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            _print_message(m, out, valid_topic, error_topic, settings)
            return 0
        out(f"no record arrived from {topic} within {timeout:g} s")
        return 1
    finally:
        consumer.close()


def _print_message(
    m, out: Callable[[str], None], valid_topic: str, error_topic: str, settings: Settings
) -> None:
    _, ts = m.timestamp()
    key = decode_bytes(m.key())
    headers = {k: decode_bytes(v) for k, v in (m.headers() or [])}
    out(f"{m.topic()} partition {m.partition()} offset {m.offset()}")
    out(
        f"  record timestamp {format_epoch_ms(ts)} ({ts})   key {key!r}   headers {headers or '{}'}"
    )
    out("value:")
    out(_pretty(m.value()))
    verdict = decide(
        m.value(), m.topic(), m.partition(), m.offset(), ts if ts >= 0 else None, m.key(),
        max_record_bytes=settings.max_record_bytes,
        clock_skew_ms=settings.clock_skew_ms,
    )
    if verdict.valid:
        out(
            f"verdict: VALID -> {valid_topic} (key {verdict.key.decode()!r}, "
            f"record timestamp {format_epoch_ms(verdict.timestamp)} = the event time), normalised value:"
        )
        out(_pretty(verdict.value))
        return
    log = ErrorLog.decode(verdict.value)
    out(f"verdict: INVALID {', '.join(log.error_codes)} -> {error_topic}")
    for code, message in log.errors.items():
        out(f"  {code}: {message}")
    out("error-log value:")
    out(_pretty(verdict.value))


def _pretty(value: bytes | None) -> str:
    if value is None:
        return "  (null)"
    text = value.decode("utf-8", errors="replace")
    try:
        return "  " + json.dumps(json.loads(text), indent=2, ensure_ascii=False).replace(
            "\n", "\n  "
        )
    except ValueError:
        return "  " + repr(text) + "   (not JSON)"
