"""Kafka clients built one way: configurations, topic creation, offsets and lag, reading a topic
to its end, producing under back-pressure, and the dump/replay topic tools.

Every producer and consumer of the project gets its base configuration here, so the bootstrap
address, idempotence and batching are decided once; so are the rules every Kafka reader shares
(what a partition's offsets and a group's lag are, when a topic has been read to its end, what a
full producer queue means), so a change to one of them reaches every caller.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
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

#: read_chunks reads and returns a topic this many records at a time at most...
CHUNK_RECORDS = 20_000
#: ...and this many bytes of keys and values at most (records may be up to a megabyte each).
CHUNK_BYTES = 8 * 1024 * 1024
#: Seconds produce_when_room waits for the producer's I/O thread between two tries.
QUEUE_FULL_POLL_S = 0.05


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
            raise KafkaException(
                f"topics created but not visible after {timeout:.0f} s: {', '.join(missing)}"
            )
        time.sleep(0.1)


def require_topic(topic: str, settings: Settings | None = None) -> int:
    """Partition count of `topic`, or UnknownTopicError naming it."""
    have = existing_topics(admin_client(settings))
    if topic not in have:
        raise UnknownTopicError(f"unknown topic {topic!r}: the broker has no such topic")
    return have[topic]


@dataclass(frozen=True)
class PartitionOffsets:
    """One partition's watermarks and, where asked for, a consumer group's committed offset."""

    low: int
    high: int
    committed: int | None = None

    @property
    def lag(self) -> int:
        """Offsets the group has still to read (see `offsets_behind`)."""
        return offsets_behind(self.high, self.committed, self.low)


def offsets_behind(high: int, committed: int | None, low: int = 0) -> int:
    """Offsets between where a group resumes and the end of a partition: from its committed offset,
    or from the low watermark where it has none (auto.offset.reset is earliest). Transaction
    markers count; `group_lag` counts records."""
    return max(0, high - (low if committed is None else committed))


def committed_offset(tp: TopicPartition | None) -> int | None:
    """A committed offset, or None where the group has none (librdkafka reports a negative one)."""
    if tp is None or tp.offset is None or tp.offset < 0:
        return None
    return tp.offset


def topic_partitions(
    client: Consumer | AdminClient, topic: str, timeout: float = 10.0
) -> list[int]:
    """The partitions of `topic` as a consumer's or admin client's metadata has them, or
    UnknownTopicError naming the topic."""
    meta = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        reason = f" ({meta.error})" if meta is not None and meta.error is not None else ""
        raise UnknownTopicError(f"unknown topic {topic!r}: the broker has no such topic{reason}")
    return sorted(meta.partitions)


#: Errors of a broker or coordinator that is away for a while, not of the request itself.
#: confluent-kafka does not mark all of them retriable (NOT_COORDINATOR on a `committed` call
#: is not), so they are listed.
TRANSIENT_ERRORS = frozenset(
    {
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._WAIT_COORD,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NETWORK_EXCEPTION,
    }
)


def is_transient(exc: KafkaException) -> bool:
    """A Kafka call failed because a broker or coordinator is away, so the same call may succeed
    later (never a fatal error, nor one that requires the transaction to abort)."""
    err = exc.args[0] if exc.args else None
    return (
        isinstance(err, KafkaError)
        and not err.fatal()
        and not err.txn_requires_abort()
        and (err.retriable() or err.code() in TRANSIENT_ERRORS)
    )


#: A Kafka call still blocked after this many of its own timeouts is taken as stalled.
STALL_TIMEOUTS = 2


class KafkaCallStalled(RuntimeError):
    """A Kafka client call that did not return within its deadline; its client must be replaced."""


def call_with_deadline(call: Callable[[], object], seconds: float, name: str):
    """call() in a worker thread; its result or exception, or KafkaCallStalled after `seconds`.

    Some librdkafka 2.16 calls can block far past their own timeout argument: in the fault suite
    send_offsets_to_transaction hung over 4 minutes after the broker holding the group coordinator
    was killed (librdkafka issue #5511, open: a decommissioned broker stays cached as coordinator
    and no FindCoordinator is ever sent). A blocked C call cannot be interrupted, so the caller
    abandons the client (the thread stays parked, a daemon) and opens a new one, whose init
    fences the old.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise KafkaCallStalled(f"{name} did not return within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _committed(consumer: Consumer, tps: list[TopicPartition], timeout: float) -> list:
    """`consumer.committed`, retried on transient errors until `timeout`. After a broker restart
    librdkafka can return NOT_COORDINATOR instead of finding the new coordinator itself:
    seen in the fault suite's 60 s broker freeze, the first lag query after the resume failed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.committed(tps, timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            if not is_transient(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def partition_offsets(
    consumer: Consumer, topic: str, committed: bool = False, timeout: float = 10.0
) -> dict[int, PartitionOffsets]:
    """partition -> PartitionOffsets of `topic`. High is read_committed's end where the consumer
    is. With `committed`, the committed offsets of the consumer's group.id too: fetched only, the
    consumer never joins the group."""
    tps = [TopicPartition(topic, p) for p in topic_partitions(consumer, topic, timeout)]
    commits = _committed(consumer, tps, timeout) if committed else [None] * len(tps)
    out: dict[int, PartitionOffsets] = {}
    for tp, c in zip(tps, commits):
        low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
        out[tp.partition] = PartitionOffsets(low, high, committed_offset(c))
    return out


def partition_end_offsets(
    topic: str, settings: Settings | None = None, group_id: str | None = None
) -> dict[int, tuple[int, int, int | None]]:
    """partition -> (low, high, committed offset of group_id or None). High is read_committed."""
    consumer = Consumer(consumer_config(group_id or "darooghe-offsets-probe", settings))
    try:
        offsets = partition_offsets(consumer, topic, committed=group_id is not None)
        return {p: (o.low, o.high, o.committed) for p, o in offsets.items()}
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
    consumer = Consumer(consumer_config(group_id, settings))
    try:
        lag: dict[int, int] = {}
        probe: dict[int, tuple[int, int]] = {}  # partition -> (commit, high)
        for p, o in partition_offsets(consumer, topic, committed=True).items():
            lag[p] = o.lag
            if 0 < o.lag <= probe_limit:
                probe[p] = (o.high - o.lag, o.high)
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


@dataclass
class Chunk:
    """Up to a chunk of consumed messages, and per partition the offset to read from after them."""

    messages: list[Message]
    next_offsets: dict[int, int]


def read_chunks(
    consumer: Consumer,
    topic: str,
    start: dict[int, int] | None = None,
    max_records: int = CHUNK_RECORDS,
    max_bytes: int = CHUNK_BYTES,
    idle_timeout: float = 5.0,
) -> Iterator[Chunk]:
    """The records of `topic` from `start` (partition -> offset; default: the beginning) to its end
    now, in chunks of at most `max_records` records or `max_bytes` bytes (at least one record).

    The one way the project reads a topic to its end: a partition is done at its end-of-partition
    event (the consumer needs enable.partition.eof, as consumer_config sets it); after
    `idle_timeout` seconds without a record the read ends anyway (read_committed: an open
    transaction or trailing markers hold the end below the high watermark).
    Always yields at least one chunk, possibly empty, so the caller learns where the log now begins.
    Each chunk's `next_offsets` covers every partition. The consumer is assigned explicitly (no
    group), so nothing is committed to the broker.
    """
    start = start or {}
    next_offsets: dict[int, int] = {}
    assignment = []
    for p, o in partition_offsets(consumer, topic).items():
        # Offsets below `low` were removed by retention; start where the log now begins.
        begin = max(start.get(p, o.low), o.low)
        next_offsets[p] = begin
        if begin < o.high:
            assignment.append(TopicPartition(topic, p, begin))
    if not assignment:
        yield Chunk([], dict(next_offsets))
        return
    consumer.assign(assignment)
    pending = {tp.partition for tp in assignment}
    messages: list[Message] = []
    size = 0
    last_progress = time.monotonic()
    try:
        while pending:
            batch = consumer.consume(min(1000, max_records - len(messages)), timeout=0.5)
            if not batch and time.monotonic() - last_progress > idle_timeout:
                break  # read_committed: an open transaction holds the end below the high watermark
            for m in batch:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        next_offsets[m.partition()] = max(next_offsets[m.partition()], m.offset())
                        pending.discard(m.partition())
                        continue
                    raise KafkaException(m.error())
                last_progress = time.monotonic()
                messages.append(m)
                size += len(m.value() or b"") + len(m.key() or b"")
                next_offsets[m.partition()] = m.offset() + 1
            if len(messages) >= max_records or size >= max_bytes:
                yield Chunk(messages, dict(next_offsets))
                messages, size = [], 0
        yield Chunk(messages, dict(next_offsets))
    finally:
        consumer.unassign()


def consume_all(
    topic: str,
    settings: Settings | None = None,
    max_records: int | None = None,
    idle_timeout: float = 5.0,
) -> Iterator[Record]:
    """Read a topic from the beginning to its current end (read_committed), without a group commit."""
    consumer = Consumer(consumer_config(None, settings))
    try:
        count = 0
        for chunk in read_chunks(consumer, topic, idle_timeout=idle_timeout):
            for m in chunk.messages:
                yield message_to_record(m)
                count += 1
                if max_records is not None and count >= max_records:
                    return
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


def produce_when_room(
    producer: Producer,
    topic: str,
    value: bytes | str | None,
    key: bytes | str | None = None,
    timestamp: int = 0,
    headers: list | dict | None = None,
    on_delivery: Callable | None = None,
    partition: int = -1,
) -> None:
    """producer.produce(), waiting while the client's local queue is full.

    BufferError is back-pressure, not a failure: the queue holds what the I/O thread has not sent
    yet, so polling lets it drain (and serves delivery reports) until the record fits. Parameters
    are passed by name to produce (timestamp 0 = now, partition -1 = by the partitioner).
    """
    while True:
        try:
            producer.produce(
                topic,
                value,
                key,
                partition=partition,
                timestamp=timestamp,
                headers=headers,
                on_delivery=on_delivery,
            )
            return
        except BufferError:
            producer.poll(QUEUE_FULL_POLL_S)


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
        keep = keep_partitions and rec.partition is not None and rec.partition < n_parts
        produce_when_room(
            producer,
            topic,
            rec.value.encode(),
            None if rec.key is None else rec.key.encode(),
            timestamp=rec.timestamp,
            headers=rec.kafka_headers(),
            on_delivery=on_delivery,
            partition=rec.partition if keep else -1,
        )
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
    producer.produce(
        topic, value=payload, on_delivery=lambda err, msg: delivered.append((err, msg))
    )
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
