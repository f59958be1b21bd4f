"""The validator as a Kafka service: read-process-write, exactly once, in batches.

Modelled on confluent-kafka-python's examples/eos-transactions.py, scaled up for throughput and
for several instances:

- Identity. Each instance has a stable id "<group>-<instance>" used as its producer's
  `transactional.id` and its consumer's `group.instance.id`. Restarting an instance under the same
  id fences its dead predecessor: init_transactions() aborts whatever that one left open (no wait
  for the broker's transaction timeout), and static membership hands it the same partitions back
  without a rebalance. Two live instances must not share an instance number; if they do, the older
  one is fenced (a fatal error) and stops.
- Sharing. Instances subscribe through the consumer group, so the input partitions are split
  between them. With KIP-447 the group metadata sent along with the offsets fences a zombie that
  lost its partitions in a rebalance: its commit fails and its output is aborted.
- Batches. consume(N) → decide() each record → produce to the valid or the error topic → send the
  batch's next offsets to the transaction → commit. One transaction per batch, not per record, is
  what gives the throughput. A transaction begins only after consume() returns, and rebalance
  callbacks only run inside consume(), so a rebalance never meets an open transaction.
- Failures. An abortable error aborts the transaction and rewinds the consumer to the group's
  committed offsets, so the batch is read again; a fatal error stops the instance with an error.
  A broker outage is not fatal: a transactional call or committed() that times out or meets a
  moving coordinator is retried with exponential backoff (up to MAX_BACKOFF_S between tries)
  until it succeeds or a stop is requested. A call blocked past twice its own timeout (a
  librdkafka hang, see `kafka_io.call_with_deadline`) is abandoned with its producer: a new
  producer under the same id fences the old one, and the batch is read again unless the offsets
  committed meanwhile show it went through. If the process dies anyway, the `validator_watch`
  sensor starts an enabled instance again (darooghe.validation.supervision). A consumer that hits
  a fatal error (a static member fenced by its own old registration after the group coordinator
  moved) is replaced by a new one under the same id; more than MAX_CONSUMER_REOPENS of those in
  REOPEN_WINDOW_S mean a second live instance with this id, and the instance stops.
  A crash (even SIGKILL) leaves at most an open transaction, which read_committed readers never
  see and the next start of the same instance aborts.
- Records that cannot be written. A record the producer refuses for good (over its
  `message.max.bytes`, e.g. a valid value with huge headers) is not a transaction failure: it is
  routed as a bounded ERR_SCHEMA error record pointing to its source offset, so one poison pill
  never blocks the partition. (decide() already bounds every error record it builds.)
- Stopping. should_stop() (set by SIGTERM/Ctrl-C) is checked between batches: the open batch is
  committed, then the consumer closes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from darooghe.config import Settings, load_settings
from darooghe.kafka_io import (
    STALL_TIMEOUTS,
    KafkaCallStalled,
    call_with_deadline,
    consumer_config,
    is_transient,
    offsets_behind,
    produce_when_room,
    producer_config,
    require_topic,
)
from darooghe.topics import ERROR_LOGS, LABEL_HEADER, TRANSACTIONS, VALID_TRANSACTIONS
from darooghe.validation.decision import decide, unwritable_verdict
from darooghe.validation.limits import PRODUCER_MAX_MESSAGE_BYTES
from darooghe.validation.progress import Counts, base_report, progress_path, write_progress

DEFAULT_GROUP = "darooghe-validator"
#: Longest wait between two tries of a Kafka call during an outage.
MAX_BACKOFF_S = 30.0


class ValidatorFenced(RuntimeError):
    """Another live instance with the same transactional.id took over; this one must stop."""


class ConsumerFatal(Exception):
    """The consumer hit a fatal error (it can be used no more); the batch aborts and a new
    consumer under the same group.instance.id rejoins from the committed offsets."""


#: A consumer reopened more often than this within REOPEN_WINDOW_S means another live instance
#: holds the same id (each reopening fences the other): then this one stops.
MAX_CONSUMER_REOPENS = 3
REOPEN_WINDOW_S = 600.0


@dataclass(frozen=True)
class ValidatorOptions:
    input_topic: str = TRANSACTIONS.name
    valid_topic: str = VALID_TRANSACTIONS.name
    error_topic: str = ERROR_LOGS.name
    group_id: str = DEFAULT_GROUP
    instance: str = "0"
    #: Records per consume() call and so at most per transaction.
    batch_size: int = 20_000
    #: Longest wait for a consume() to fill; a quiet stream commits a transaction this often.
    #: bench.streaming --with-validator at 1,000 events/s: 0.5 s -> 0.1 s took the raw-to-output
    #: latency of a Spark passthrough behind the validator from p50/p99 1.10/2.05 s to 0.49/0.87 s;
    #: over a 200,000-record backlog the validator's rate did not change (median of 3 rounds
    #: 108,701/s at 0.5 s, 107,330/s at 0.1 s): a backlog fills each consume() at once.
    poll_timeout: float = 0.1
    #: Seconds between progress lines / progress-file updates.
    progress_interval: float = 5.0
    #: Stop once caught up and idle this long (a one-shot catch-up run; tests); None = run forever.
    stop_when_idle: float | None = None
    #: Seconds one transactional call (init, send offsets, commit, abort, committed) may take.
    kafka_timeout_s: float = 60.0

    @property
    def member_id(self) -> str:
        """The stable identity of this instance: transactional.id and group.instance.id."""
        return f"{self.group_id}-{self.instance}"


#: The transaction and group-session timeouts of an instance (see where they are set).
TRANSACTION_TIMEOUT_MS = 180_000
SESSION_TIMEOUT_MS = 45_000


class Validator:
    """One validator instance. `run()` blocks until should_stop() is true (or idle, if asked)."""

    def __init__(
        self,
        options: ValidatorOptions | None = None,
        settings: Settings | None = None,
        log: Callable[[str], None] = print,
    ):
        self.options = options or ValidatorOptions()
        self.settings = settings or load_settings()
        self.log = log
        self.counts = Counts()
        self.transactions_committed = 0
        self.transactions_aborted = 0
        self.assigned: list[int] = []
        #: monotonic times of the first record consumed and of the last commit (for throughput)
        self.first_record_at: float | None = None
        self.last_commit_at: float | None = None
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None
        self._progress_path = progress_path(
            self.settings, self.options.group_id, self.options.instance
        )
        self._report = base_report(
            self.options.group_id,
            self.options.instance,
            transactional_id=self.options.member_id,
            input_topic=self.options.input_topic,
            valid_topic=self.options.valid_topic,
            error_topic=self.options.error_topic,
        )
        self._should_stop: Callable[[], bool] = lambda: False
        #: monotonic times the consumer was reopened after a fatal error
        self._reopened: list[float] = []
        #: The open batch's (next offsets, valid count, error codes) once its offsets are sent.
        self._in_flight: tuple[dict[int, int], int, list[tuple[str, ...]]] | None = None
        self._started = time.monotonic()
        self._last_report = (self._started, 0)
        self._last_line = self._started

    # --- lifecycle -------------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> Counts:
        o = self.options
        self._should_stop = should_stop
        for topic in (o.input_topic, o.valid_topic, o.error_topic):
            require_topic(topic, self.settings)
        self.producer = self._new_producer()
        # Aborts what a crashed predecessor with the same id left open, and fences it.
        self._retrying(
            "init_transactions", lambda: self.producer.init_transactions(o.kafka_timeout_s)
        )
        self.consumer = self._new_consumer()
        self.log(
            f"validator {o.member_id}: {o.input_topic} -> {o.valid_topic} | {o.error_topic} "
            f"(group {o.group_id}, batches of {o.batch_size})"
        )
        self._report_progress(time.monotonic(), force=True)  # "running" is visible at once
        state = "failed"
        try:
            idle_since = time.monotonic()
            while not should_stop():
                msgs = self.consumer.consume(o.batch_size, o.poll_timeout)
                aborted = self.transactions_aborted
                now = time.monotonic()
                if msgs and (self._process(msgs) or self.transactions_aborted > aborted):
                    now = idle_since = time.monotonic()  # an aborted batch is read again
                elif not self.assigned:
                    idle_since = now  # still joining the group: not idle, just not started
                elif o.stop_when_idle is not None and now - idle_since >= o.stop_when_idle:
                    self.log(f"validator {o.member_id}: idle for {o.stop_when_idle:g} s, stopping")
                    break
                self._report_progress(now)
            state = "stopped"
        finally:
            self._close(state)
        return self.counts

    def _new_producer(self) -> Producer:
        o = self.options
        return Producer(
            producer_config(
                self.settings,
                **{
                    "transactional.id": o.member_id,
                    # Longer than the broker outages the instance rides out (a partition
                    # leader or coordinator frozen for 60 s in the fault suite): with the 60 s
                    # default the coordinator aborted the open transaction by bumping the
                    # producer epoch mid-outage, which the client sees as a fatal fence. A crashed
                    # instance blocks nobody meanwhile: its restart aborts what it left open.
                    "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                    "message.max.bytes": PRODUCER_MAX_MESSAGE_BYTES,
                    "linger.ms": 5,
                    "client.id": o.member_id,
                },
            )
        )

    def _new_consumer(self) -> Consumer:
        o = self.options
        consumer = Consumer(
            consumer_config(
                o.group_id,
                self.settings,
                **{
                    "group.instance.id": o.member_id,
                    "client.id": o.member_id,
                    # A stopped static member keeps its partitions this long before the group
                    # hands them to the other instances. Long enough for the group coordinator to
                    # move off a dead broker: with 10 s the session expired during the move (fault
                    # suite, a broker frozen 60 s), and the static member rejoining was fenced by
                    # its own old registration (a fatal FENCED_INSTANCE_ID).
                    "session.timeout.ms": SESSION_TIMEOUT_MS,
                    "enable.partition.eof": False,
                },
            )
        )
        consumer.subscribe(
            [o.input_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        return consumer

    def _close(self, state: str) -> None:
        if self.consumer is not None:
            try:
                self.consumer.close()
            except (KafkaException, RuntimeError) as exc:
                self.log(f"validator {self.options.member_id}: closing the consumer: {exc}")
        self._report_progress(time.monotonic(), state=state, force=True)
        self.log(f"validator {self.options.member_id} {state}: {self.counts.summary()}")

    # --- the read-process-write step -------------------------------------------------------------
    def _process(self, msgs: list) -> int:
        """Validate and route one consumed batch in one transaction; returns records committed."""
        self._in_flight = None
        try:
            return self._transact(msgs)
        except KafkaCallStalled as exc:
            return self._replace_stalled_clients(exc)

    def _transact(self, msgs: list) -> int:
        """The batch's transaction: begin, produce each verdict, send the offsets, commit.

        The loop body is the validator's hot path: locals instead of attribute lookups, counts
        kept as plain integers and turned into Counts once per batch.
        """
        if self.first_record_at is None:
            self.first_record_at = time.monotonic()
        o = self.options
        producer = self.producer
        input_topic, valid_topic, error_topic = o.input_topic, o.valid_topic, o.error_topic
        no_timestamp = TIMESTAMP_NOT_AVAILABLE
        max_record_bytes = self.settings.max_record_bytes
        clock_skew_ms = self.settings.clock_skew_ms
        next_offsets: dict[int, int] = {}
        error_codes: list[tuple[str, ...]] = []
        n_valid = 0
        producer.begin_transaction()
        try:
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.fatal() or err.code() == KafkaError._FATAL:
                        raise ConsumerFatal(err)
                    self.log(f"validator {o.member_id}: consumer: {err}")
                    continue
                ts_type, ts = m.timestamp()
                partition, offset = m.partition(), m.offset()
                verdict = decide(
                    m.value(),
                    input_topic,
                    partition,
                    offset,
                    None if ts_type == no_timestamp else ts,
                    m.key(),
                    None,
                    max_record_bytes,
                    clock_skew_ms,
                )
                topic = valid_topic if verdict[0] else error_topic
                try:
                    produce_when_room(
                        producer, topic, verdict[2], verdict[1], verdict[3], m.headers()
                    )
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                        raise
                    verdict = self._route_unwritable(m, verdict, topic, exc.args[0])
                if verdict[0]:
                    n_valid += 1
                else:
                    error_codes.append(verdict[4])
                next_offsets[partition] = offset + 1
            if not next_offsets:
                self._abort()  # only consumer errors in this batch: nothing to do
                return 0
            self._in_flight = (next_offsets, n_valid, error_codes)
            offsets = [TopicPartition(input_topic, p, off) for p, off in next_offsets.items()]
            group = self.consumer.consumer_group_metadata()
            call_with_deadline(
                lambda: producer.send_offsets_to_transaction(offsets, group, o.kafka_timeout_s),
                self._stall_s,
                "send_offsets_to_transaction",
            )
            self._commit()
        except KafkaException as exc:
            self._abort_and_rewind(exc)
            return 0
        except ConsumerFatal as exc:
            # Seen in the fault suite: a broker frozen 60 s moved the group coordinator, and the
            # static member's rejoin was fenced by its own old registration (FENCED_INSTANCE_ID,
            # fatal for the consumer, not for the producer). Nothing of this batch is committed.
            self._abort()
            self.transactions_aborted += 1
            self._reopen_consumer(exc.args[0])
            return 0
        producer.poll(0)  # serve delivery reports so they do not pile up
        return self._count_committed(n_valid, error_codes)

    def _count_committed(self, n_valid: int, error_codes: list[tuple[str, ...]]) -> int:
        self.last_commit_at = time.monotonic()
        self.counts.records_in += n_valid + len(error_codes)
        self.counts.valid += n_valid
        self.counts.errors += len(error_codes)
        by_code = self.counts.by_code
        for codes in error_codes:
            for code in codes:
                by_code[code] += 1
        self.transactions_committed += 1
        return n_valid + len(error_codes)

    def _route_unwritable(self, m, verdict, topic: str, err: KafkaError):
        """Write, in place of an output the producer refused for good, its bounded error record."""
        ts_type, ts = m.timestamp()
        size = (
            len(verdict.value)
            + len(verdict.key or b"")
            + sum(len(k) + len(v or b"") for k, v in (m.headers() or []))
        )
        replacement = unwritable_verdict(
            verdict,
            self.options.input_topic,
            m.partition(),
            m.offset(),
            None if ts_type == TIMESTAMP_NOT_AVAILABLE else ts,
            m.value(),
            f"the output record for {topic} ({size:,} bytes with key and headers) is over the "
            f"producer's limit of {PRODUCER_MAX_MESSAGE_BYTES:,} bytes ({err.str()}); written "
            "without its payload and headers: read the original at its source offset",
        )
        headers = [
            (k, v) for k, v in (m.headers() or []) if k == LABEL_HEADER and len(v or b"") < 1024
        ]
        self.log(
            f"validator {self.options.member_id}: partition {m.partition()} offset {m.offset()}: "
            f"output of {size:,} bytes refused ({err.str()}); routed as an error record"
        )
        produce_when_room(
            self.producer,
            self.options.error_topic,
            replacement.value,
            replacement.key,
            replacement.timestamp,
            headers or None,
        )
        return replacement

    def _commit(self) -> None:
        self._retrying(
            "commit_transaction",
            lambda: self.producer.commit_transaction(self.options.kafka_timeout_s),
        )

    def _abort(self) -> None:
        self._retrying(
            "abort_transaction",
            lambda: self.producer.abort_transaction(self.options.kafka_timeout_s),
        )

    @property
    def _stall_s(self) -> float:
        """A Kafka call still blocked after this long is stalled (`call_with_deadline`)."""
        return STALL_TIMEOUTS * self.options.kafka_timeout_s

    def _retrying(self, what: str, call: Callable[[], object]):
        """call() until it succeeds: retriable and outage errors are retried with backoff; a
        fatal or request error, or any error once a stop is requested, is raised; a call that
        stalls raises KafkaCallStalled."""
        delay, tries = 0.5, 0
        while True:
            try:
                return call_with_deadline(call, self._stall_s, what)
            except KafkaException as exc:
                err = exc.args[0]
                # An error that requires an abort (e.g. records of the transaction timed out while
                # a broker was frozen) is not transient: raised, the batch aborts and rewinds.
                if not is_transient(exc) or self._should_stop():
                    raise
                tries += 1
                self.log(
                    f"validator {self.options.member_id}: {what} failed ({err}); "
                    f"retry {tries} in {delay:.1f} s"
                )
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def _abort_and_rewind(self, exc: KafkaException) -> None:
        err: KafkaError = exc.args[0]
        if err.fatal() or err.code() == KafkaError._FENCED:
            raise ValidatorFenced(
                f"validator {self.options.member_id}: fatal transaction error ({err}); another "
                f"instance with transactional.id {self.options.member_id!r} probably took over"
            ) from exc
        self.log(
            f"validator {self.options.member_id}: transaction aborted ({err}); "
            "rewinding to the committed offsets to read the batch again"
        )
        self._abort()
        self.transactions_aborted += 1
        self._rewind()

    def _rewind(self) -> list[TopicPartition]:
        """Position the consumer at the group's committed offsets (what the aborted batch undid);
        returns them."""
        assignment = self.consumer.assignment()
        if not assignment:
            return []
        committed = self._retrying(
            "committed",
            lambda: self.consumer.committed(assignment, timeout=self.options.kafka_timeout_s),
        )
        try:
            for tp in committed:
                if tp.offset < 0:  # nothing committed yet: auto.offset.reset is earliest
                    tp.offset = OFFSET_BEGINNING
                self.consumer.seek(tp)
        except KafkaException as exc:
            # A partition not yet fetching cannot be sought; a fresh consumer starts from the
            # committed offsets by construction (and static membership keeps the assignment).
            self.log(
                f"validator {self.options.member_id}: seek failed ({exc}); reopening the consumer"
            )
            self.consumer.close()
            self.assigned = []
            self.consumer = self._new_consumer()
        return committed

    def _replace_stalled_clients(self, stalled: KafkaCallStalled) -> int:
        """Carry on after a Kafka call stalled mid-batch; returns the records it committed.

        The stalled producer is abandoned and a new one opened under the same transactional.id:
        its init fences the old one, aborting the open transaction (or letting a commit already
        under way finish). The committed offsets then say which happened: the batch is counted
        if its offsets are among them, and the consumer is rewound to them either way. A consumer
        that cannot answer is replaced too; the new one starts from the committed offsets.
        """
        o = self.options
        self.log(f"validator {o.member_id}: {stalled}; replacing the producer")
        self.producer = self._new_producer()
        self._retrying(
            "init_transactions", lambda: self.producer.init_transactions(o.kafka_timeout_s)
        )
        in_flight, self._in_flight = self._in_flight, None
        try:
            committed = {tp.partition: tp.offset for tp in self._rewind()}
        except (KafkaCallStalled, KafkaException) as exc:
            self.log(f"validator {o.member_id}: rewinding failed ({exc}); replacing the consumer")
            self.assigned = []
            # The old consumer is abandoned, not closed: it may be stuck.
            self.consumer = self._new_consumer()
            committed = {}
        if in_flight is not None and committed:
            next_offsets, n_valid, error_codes = in_flight
            if all(committed.get(p, -1) >= off for p, off in next_offsets.items()):
                self.log(f"validator {o.member_id}: the stalled batch was committed after all")
                return self._count_committed(n_valid, error_codes)
        self.transactions_aborted += 1
        return 0

    def _reopen_consumer(self, err: KafkaError) -> None:
        """A new consumer in place of one that hit a fatal error; it rejoins under the same
        group.instance.id and starts from the committed offsets (what the aborted batch undid)."""
        now = time.monotonic()
        self._reopened = [t for t in self._reopened if now - t < REOPEN_WINDOW_S] + [now]
        if len(self._reopened) > MAX_CONSUMER_REOPENS:
            raise ValidatorFenced(
                f"validator {self.options.member_id}: consumer fenced {len(self._reopened)} times "
                f"in {REOPEN_WINDOW_S:g} s ({err}); another live instance probably has this id"
            )
        self.log(f"validator {self.options.member_id}: consumer failed ({err}); reopening it")
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            self.log(f"validator {self.options.member_id}: closing the failed consumer: {exc}")
        self.assigned = []
        self.consumer = self._new_consumer()

    # --- rebalance callbacks (run inside consume(), never with a transaction open) ---------------
    def _on_assign(self, consumer, partitions) -> None:
        self.assigned = sorted(tp.partition for tp in partitions)
        self.log(f"validator {self.options.member_id}: assigned partitions {self.assigned}")

    def _on_revoke(self, consumer, partitions) -> None:
        self.log(
            f"validator {self.options.member_id}: revoked partitions {sorted(tp.partition for tp in partitions)}"
        )
        self.assigned = []

    def _on_lost(self, consumer, partitions) -> None:
        self.log(
            f"validator {self.options.member_id}: lost partitions {sorted(tp.partition for tp in partitions)}"
        )
        self.assigned = []

    # --- progress --------------------------------------------------------------------------------
    def lag(self) -> int | None:
        """Records behind the end of the assigned partitions, from the consumer's own view."""
        if self.consumer is None or not self.assigned:
            return None
        total, known = 0, False
        tps = [TopicPartition(self.options.input_topic, p) for p in self.assigned]
        try:
            positions = self.consumer.position(tps)
        except KafkaException:
            return None
        for tp in positions:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high is not None and high >= 0 and tp.offset >= 0:
                total += offsets_behind(high, tp.offset)
                known = True
        return total if known else None

    def _report_progress(self, now: float, state: str = "running", force: bool = False) -> None:
        last_t, last_in = self._last_report
        if not force and now - last_t < self.options.progress_interval:
            return
        c = self.counts
        rate = (c.records_in - last_in) / (now - last_t) if now > last_t else 0.0
        lag = self.lag() if state == "running" else None
        elapsed = now - self._started
        report = {
            **self._report,
            **c.to_dict(),
            "state": state,
            "updated_at_ms": int(time.time() * 1000),
            "uptime_s": round(elapsed, 1),
            "rate_per_s": round(rate, 1),
            "avg_rate_per_s": round(c.records_in / elapsed, 1) if elapsed > 0 else 0.0,
            "lag": lag,
            "assigned_partitions": list(self.assigned),
            "transactions_committed": self.transactions_committed,
            "transactions_aborted": self.transactions_aborted,
        }
        write_progress(self._progress_path, report)
        # A line when records moved, else one a minute to show the instance is alive.
        if c.records_in != last_in or now - self._last_line >= 60 or force:
            self._last_line = now
            if state == "running":
                self.log(
                    f"validator {self.options.member_id}: {c.summary()}; {rate:,.0f}/s, "
                    f"lag {'?' if lag is None else lag}"
                )
        self._last_report = (now, c.records_in)
