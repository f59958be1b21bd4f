"""Kafka clients built one way: configurations, topic creation, and the dump/replay topic tools.

Every producer and consumer of the project gets its base configuration here, so the bootstrap
address, idempotence and batching are decided once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from darooghe.config import Settings, load_settings
from darooghe.records import Record, decode_bytes
from darooghe.topics import ALL_TOPICS, TIMESTAMP_AFTER_MAX, Topic, replication_config


class UnknownTopicError(LookupError):
    """A topic name the broker does not have."""


def producer_config(settings: Settings | None = None, **overrides) -> dict:
    s = settings or load_settings()
    conf = {
        "bootstrap.servers": s.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
    }
    conf.update(overrides)
    return conf


def consumer_config(group_id: str | None, settings: Settings | None = None, **overrides) -> dict:
    """A read_committed consumer: aborted transactions are never seen downstream."""
    s = settings or load_settings()
    conf = {
        "bootstrap.servers": s.kafka_bootstrap,
        "group.id": group_id or f"darooghe-tool-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    }
    conf.update(overrides)
    return conf


def admin_client(settings: Settings | None = None) -> AdminClient:
    s = settings or load_settings()
    return AdminClient({"bootstrap.servers": s.kafka_bootstrap})


def existing_topics(admin: AdminClient, timeout: float = 10.0) -> dict[str, int]:
    """Topic name -> partition count."""
    md = admin.list_topics(timeout=timeout)
    return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}


def ensure_topics(
    topics: Iterable[Topic] = ALL_TOPICS, settings: Settings | None = None, timeout: float = 30.0
) -> dict[str, str]:
    """Create missing topics (idempotent). Returns topic -> "created" | "exists".

    An existing topic gets the clock-skew limit on record timestamps too, so a home created before
    the limit existed is brought in line.
    """
    s = settings or load_settings()
    admin = admin_client(s)
    have = existing_topics(admin)
    result: dict[str, str] = {}
    new = []
    for t in topics:
        if t.name in have:
            result[t.name] = "exists"
        else:
            new.append(
                NewTopic(
                    t.name,
                    t.partitions,
                    s.kafka_replication,
                    config={
                        **replication_config(s.kafka_replication),
                        **t.broker_config(s.clock_skew_ms),
                    },
                )
            )
    if new:
        for name, fut in admin.create_topics(new, operation_timeout=timeout).items():
            try:
                fut.result(timeout)
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                result[name] = "exists"
        _wait_visible([t.topic for t in new], admin, timeout)
    _align_timestamp_limit([n for n, r in result.items() if r == "exists"], admin, s, timeout)
    return result


def _align_timestamp_limit(
    names: list[str], admin: AdminClient, settings: Settings, timeout: float
) -> None:
    """Set message.timestamp.after.max.ms to the clock-skew allowance where it differs."""
    if not names:
        return
    want = str(settings.clock_skew_ms)
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
    stale = []
    for resource, fut in admin.describe_configs(resources, request_timeout=timeout).items():
        entry = fut.result(timeout).get(TIMESTAMP_AFTER_MAX)
        if entry is None or entry.value != want:
            stale.append(
                ConfigResource(
                    ConfigResource.Type.TOPIC,
                    resource.name,
                    incremental_configs=[
                        ConfigEntry(
                            TIMESTAMP_AFTER_MAX,
                            want,
                            incremental_operation=AlterConfigOpType.SET,
                        )
                    ],
                )
            )
    if stale:
        for fut in admin.incremental_alter_configs(stale, request_timeout=timeout).values():
            fut.result(timeout)


def _wait_visible(names: list[str], admin: AdminClient, timeout: float) -> None:
    """Wait until new topics show in metadata: creation returns before every broker view has them."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [n for n in names if n not in existing_topics(admin)]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise KafkaException(f"topics created but not visible after {timeout:.0f} s: {', '.join(missing)}")
        time.sleep(0.1)


def require_topic(topic: str, settings: Settings | None = None) -> int:
    """Partition count of `topic`, or UnknownTopicError naming it."""
    have = existing_topics(admin_client(settings))
    if topic not in have:
        raise UnknownTopicError(f"unknown topic {topic!r}: the broker has no such topic")
    return have[topic]


def partition_end_offsets(
    topic: str, settings: Settings | None = None, group_id: str | None = None
) -> dict[int, tuple[int, int, int | None]]:
    """partition -> (low, high, committed offset of group_id or None). High is read_committed."""
    n = require_topic(topic, settings)
    consumer = Consumer(consumer_config(group_id or "darooghe-offsets-probe", settings))
    try:
        tps = [TopicPartition(topic, p) for p in range(n)]
        committed = consumer.committed(tps, timeout=10) if group_id else [None] * n
        out = {}
        for tp, c in zip(tps, committed):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            off = c.offset if c is not None and c.offset >= 0 else None
            out[tp.partition] = (low, high, off)
        return out
    finally:
        consumer.close()


def group_lag(
    topic: str,
    group_id: str,
    settings: Settings | None = None,
    probe_limit: int = 1_000,
    probe_timeout: float = 5.0,
) -> dict[int, int]:
    """partition -> records (not offsets) of `topic` that `group_id` has still to read.

    A transactional producer ends each commit with a control record that read_committed
    consumers skip and a group never commits past (the validator commits the next *record*
    offset): after a transactional backfill, high - committed stays at one per partition for
    good. Where that gap is at most `probe_limit` offsets, a read_committed probe reads from
    the commit and counts the records it finds; wider gaps are returned as they are (they
    over-count by the markers in them, which is fine for progress).
    """
    n = require_topic(topic, settings)
    consumer = Consumer(consumer_config(group_id, settings))
    try:
        tps = [TopicPartition(topic, p) for p in range(n)]
        committed = consumer.committed(tps, timeout=10)
        lag: dict[int, int] = {}
        probe: dict[int, tuple[int, int]] = {}  # partition -> (commit, high)
        for tp, c in zip(tps, committed):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            start = c.offset if c is not None and c.offset >= 0 else low
            gap = max(0, high - start)
            lag[tp.partition] = gap
            if 0 < gap <= probe_limit:
                probe[tp.partition] = (start, high)
        if probe:
            consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in probe.items()])
            found = dict.fromkeys(probe, 0)
            deadline = time.monotonic() + probe_timeout
            pending = set(probe)
            while pending and time.monotonic() < deadline:
                for m in consumer.consume(1_000, timeout=0.2):
                    if m.error() is None and m.offset() < probe[m.partition()][1]:
                        found[m.partition()] += 1
                positions = consumer.position([TopicPartition(topic, p) for p in pending])
                # the position moves past control records too, so it reaches high at the end
                pending -= {tp.partition for tp in positions if tp.offset >= probe[tp.partition][1]}
            for p in probe:
                if p not in pending:
                    lag[p] = found[p]
        return lag
    finally:
        consumer.close()


def consume_all(
    topic: str,
    settings: Settings | None = None,
    max_records: int | None = None,
    idle_timeout: float = 5.0,
) -> Iterator[Record]:
    """Read a topic from the beginning to its current end (read_committed), without a group commit."""
    n = require_topic(topic, settings)
    consumer = Consumer(consumer_config(None, settings))
    try:
        ends = {}
        tps = []
        for p in range(n):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                tps.append(TopicPartition(topic, p, low))
        if not tps:
            return
        consumer.assign(tps)
        done: set[int] = set()
        count = 0
        last = time.monotonic()
        while len(done) < len(tps):
            msgs = consumer.consume(10_000, timeout=0.5)
            if not msgs and time.monotonic() - last > idle_timeout:
                break  # transaction markers can leave the high watermark past the last record
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        done.add(m.partition())
                        continue
                    raise KafkaException(m.error())
                last = time.monotonic()
                yield message_to_record(m)
                count += 1
                if max_records is not None and count >= max_records:
                    return
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
    finally:
        consumer.close()


def count_records(topic: str, settings: Settings | None = None) -> int:
    """Records in `topic` now (read_committed). Offsets over-count: transaction markers take one."""
    return sum(1 for _ in consume_all(topic, settings))


def message_to_record(m) -> Record:
    _, ts = m.timestamp()
    headers = {k: decode_bytes(v) or "" for k, v in (m.headers() or [])}
    return Record(
        key=decode_bytes(m.key()),
        value=decode_bytes(m.value()) or "",
        timestamp=ts,
        headers=headers,
        partition=m.partition(),
        offset=m.offset(),
    )


def produce_records(
    topic: str,
    records: Iterable[Record],
    settings: Settings | None = None,
    keep_partitions: bool = True,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce records keeping key, CreateTime timestamp and headers.

    With keep_partitions, a record that names a partition the topic has goes back to it, so a dump
    replayed into a topic of the same shape dumps to the same bytes.
    """
    n_parts = require_topic(topic, settings)
    producer = Producer(producer_config(settings))
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))

    n = 0
    for rec in records:
        kwargs = {
            "topic": topic,
            "key": None if rec.key is None else rec.key.encode(),
            "value": rec.value.encode(),
            "timestamp": rec.timestamp,
            "headers": rec.kafka_headers(),
            "on_delivery": on_delivery,
        }
        if keep_partitions and rec.partition is not None and rec.partition < n_parts:
            kwargs["partition"] = rec.partition
        while True:
            try:
                producer.produce(**kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        n += 1
        if progress and n % 50_000 == 0:
            progress(n)
    remaining = producer.flush(60)
    if remaining or errors:
        raise KafkaException(
            f"replay into {topic!r}: {len(errors)} delivery errors, {remaining} undelivered"
            + (f"; first error: {errors[0]}" if errors else "")
        )
    return n


def round_trip(settings: Settings | None = None, topic: str = "darooghe.healthcheck") -> float:
    """Produce one record and read it back; returns the seconds it took. Raises on failure."""
    s = settings or load_settings()
    t0 = time.monotonic()
    ensure_topics([Topic(topic, 1, "service health probe", {"retention.ms": "3600000"})], s)
    payload = uuid.uuid4().hex.encode()
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap, "acks": "all"})
    delivered: list = []
    producer.produce(topic, value=payload, on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(15)
    if not delivered or delivered[0][0] is not None:
        raise KafkaException(f"health probe produce to {topic!r} failed: {delivered}")
    msg = delivered[0][1]
    consumer = Consumer(consumer_config(None, s))
    try:
        consumer.assign([TopicPartition(topic, msg.partition(), msg.offset())])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None or m.error():
                continue
            if m.value() == payload:
                return time.monotonic() - t0
        raise KafkaException(f"health probe record not read back from {topic!r} within 15 s")
    finally:
        consumer.close()
