"""The fraud detection streaming query: valid transactions in, fraud alerts out.

    records (Kafka or record files) -> parse -> watermark(event_time, allowed lateness)
      -> coalesce(one task per state partition)
      -> mapInArrow(pack_buckets): per input batch, one row per customer bucket (its rows packed)
      -> groupBy(customer bucket).transformWithStateInPandas(FraudDetector, EventTime), state per
         bucket in event-time slices, rules from the rule history of the micro-batch
      -> foreachBatch: alerts to darooghe.fraud_alerts (key customer_id) and the processor's
                       REVIEW/BLOCK decisions to darooghe.fraud_decisions in one Kafka transaction
                       per batch (exactly once,
                       darooghe.streaming.publishers.TransactionalTopicPublisher), or to
                       JSON-lines files;
                       transactions behind the watermark to darooghe.late_transactions (key
                       customer_id) or a JSON-lines file beside it (darooghe.fraud.late);
                       redelivered rows counted

Work directory (default `$DAROOGHE_HOME/checkpoints/fraud_detection/<source>`): `checkpoint/`
(Spark: offsets, commits, RocksDB state with changelog checkpointing), `profiles.json` (the averages
snapshot the processor reads, see darooghe.fraud.profiles), `rules.json` (the rule history snapshot,
darooghe.fraud.rule_store), `file_sink.json` and `late_sink.json`
(last batch written to the files of --output), `layout.json` (the checkpoint's customer bucket
count, see checkpoint_buckets). A stopped or killed job resumes from it.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from darooghe.config import Settings
from darooghe.fraud.decisions import DECISIONS_SIDE
from darooghe.fraud.late import with_batch_id
from darooghe.fraud.profiles import ProfileRefresher, ProfileSnapshot, ProfileSource
from darooghe.fraud.rule_store import RuleRefresher, RuleSnapshot, RuleSource
from darooghe.kafka_io import ensure_topics
from darooghe.streaming.fraud_processor import (
    ALERT,
    BUCKETS,
    DECISION,
    DUPLICATE,
    LATE,
    LEGACY_BUCKETS,
    OUTPUT_SCHEMA,
    PACKED_SCHEMA,
    FraudDetector,
    OutputRow,
    customer_bucket,
    pack_buckets,
)
from darooghe.streaming.options import DEFAULT_LATENESS_MS, DEFAULT_TRIGGER_SECONDS
from darooghe.streaming.progress import ProgressRecorder, make_listener, progress_path
from darooghe.streaming.publishers import (
    JsonLinesPublisher,
    TopicPublisher,
    TransactionalTopicPublisher,
    checkpoint_epoch,
    side_output_path,
    transactional_id_for,
)
from darooghe.streaming.sources import (
    FRAUD_FIELDS_SCHEMA,
    SourceConfig,
    parse_transactions,
    read_records,
    workdir_for,
)
from darooghe.topics import BY_NAME, FRAUD_ALERTS, FRAUD_DECISIONS, FRAUD_RULES, LATE_TRANSACTIONS
from darooghe.validation.clock import watermark_delay_ms

JOB = "stream-fraud"  # background process name and progress file
QUERY = "fraud_detection"


def default_workdir(settings: Settings, source: SourceConfig, output: Path | None) -> Path:
    """One work directory per (source, sink): a replay never resumes another run's checkpoint."""
    base = settings.checkpoints_dir / QUERY
    return workdir_for(base, source, output)


@dataclass(frozen=True)
class FraudJobConfig:
    source: SourceConfig
    workdir: Path
    output: Path | None = None
    allowed_lateness_ms: int = DEFAULT_LATENESS_MS
    profiles: Path | None = None
    profiles_refresh_s: float = 30.0
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS["fraud"]
    progress_file: Path | None = None
    alerts_topic: str = FRAUD_ALERTS.name
    late_topic: str = LATE_TRANSACTIONS.name
    decisions_topic: str = FRAUD_DECISIONS.name
    #: The rule history: a JSON file (rules_file), else a rule-set topic (rules_topic; with a
    #: Kafka source it defaults to darooghe.fraud_rules), else the specification's defaults.
    rules_file: Path | None = None
    rules_topic: str | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.workdir / "checkpoint"

    @property
    def profiles_snapshot(self) -> Path:
        return self.workdir / "profiles.json"

    @property
    def rules_snapshot(self) -> Path:
        return self.workdir / "rules.json"

    def rule_source(self, settings: Settings) -> RuleSource:
        topic = self.rules_topic or (FRAUD_RULES.name if self.source.kind == "kafka" else None)
        return RuleSource(settings, topic=topic, path=self.rules_file)

    @property
    def layout_file(self) -> Path:
        return self.workdir / "layout.json"

    @property
    def late_output(self) -> Path | None:
        """File mode: the late transactions' JSON lines beside the alerts (a.jsonl ->
        a.late_transactions.jsonl)."""
        return None if self.output is None else side_output_path(self.output, "late_transactions")


@dataclass
class FraudCounters:
    batches: int = 0
    alerts: int = 0
    late: int = 0
    duplicates: int = 0
    decisions: int = 0
    by_rule: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "batches": self.batches,
            "alerts": self.alerts,
            "late_rows": self.late,
            "duplicate_rows": self.duplicates,
            "decisions": self.decisions,
            "alerts_by_rule": dict(self.by_rule),
        }


#: Logs a WARN for every read of a value state that does not exist yet — every new customer of
#: every micro-batch; the processor reads first on purpose (one state call instead of two).
STATE_SERVER_LOGGER = (
    "org.apache.spark.sql.execution.python.streaming.TransformWithStateInPySparkStateServer"
)


def quiet_state_server(spark: SparkSession) -> None:
    """Raise the Python state server's logger to ERROR (in local mode executors share the JVM)."""
    jvm = spark.sparkContext._jvm
    jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(
        STATE_SERVER_LOGGER, jvm.org.apache.logging.log4j.Level.ERROR
    )


def checkpoint_buckets(cfg: FraudJobConfig) -> int:
    """The customer buckets the checkpoint's state is keyed by. A new checkpoint takes BUCKETS and
    records it in `layout.json`; a checkpoint that already ran batches keeps the recorded count,
    or LEGACY_BUCKETS when it ran before the count was recorded. Another count on resume would look
    each customer's held rows up in another bucket and miss alerts without a word: a file-mode
    stream started on 32 buckets and finished on 6 gave 949 of the oracle's 971 alerts."""
    offsets = cfg.checkpoint_dir / "offsets"
    started = offsets.is_dir() and any(offsets.iterdir())
    if started:
        if not cfg.layout_file.exists():
            return LEGACY_BUCKETS
        try:
            buckets = json.loads(cfg.layout_file.read_text())["customer_buckets"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{cfg.layout_file}: unreadable checkpoint layout ({exc!r}); it must hold "
                f'{{"customer_buckets": N}} as the job wrote it, or start afresh with --fresh'
            ) from exc
        if not isinstance(buckets, int) or buckets < 1:
            raise ValueError(
                f"{cfg.layout_file}: customer_buckets must be a positive integer, not {buckets!r}"
            )
        return buckets
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    cfg.layout_file.write_text(json.dumps({"customer_buckets": BUCKETS}) + "\n")
    return BUCKETS


def processor_inputs(spark: SparkSession, cfg: FraudJobConfig, settings: Settings) -> DataFrame:
    """The rows the stateful processor judges (INPUT_COLUMNS), before they are packed."""
    buckets = checkpoint_buckets(cfg)
    transactions = parse_transactions(
        read_records(spark, cfg.source, settings), FRAUD_FIELDS_SCHEMA
    )
    watermarked = transactions.withWatermark(
        "event_time", f"{watermark_delay_ms(cfg.allowed_lateness_ms, settings)} milliseconds"
    )
    # event_time (the watermark column) is projected away on purpose: the stateful operator then
    # passes rows behind the watermark to the processor, which reports them, instead of Spark
    # dropping them silently. The watermark itself still advances from it.
    return watermarked.select(
        customer_bucket(F.col("customer_id"), buckets).alias("bucket"),
        "customer_id",
        "transaction_id",
        F.unix_millis("event_time").alias("event_ms"),
        F.col("location.lat").alias("lat"),
        F.col("location.lng").alias("lng"),
        F.col("amount"),
        F.col("risk_level"),
    )


def packed_inputs(spark: SparkSession, cfg: FraudJobConfig, settings: Settings) -> DataFrame:
    """`processor_inputs` packed per bucket (PACKED_SCHEMA), as the stateful operator reads them.

    One task per configured shuffle partition (a core each) reads, parses and packs, whatever the
    topic's partitions: with 4 of them on 2 cores that stage ran in two waves, each task with its
    own Python round trip. Measured live at 1,000 events/s, no validator, two runs each: the stage
    142 -> 73 ms, the median micro-batch 638 / 577 -> 532 / 544 ms; the sustained rate within the
    noise (400,000-event backlog: 18,820 vs 19,321 events/s)."""
    return (
        processor_inputs(spark, cfg, settings)
        .coalesce(settings.spark_shuffle_partitions)
        .mapInArrow(pack_buckets, PACKED_SCHEMA)
    )


def alert_stream(
    spark: SparkSession, cfg: FraudJobConfig, settings: Settings, processor=None
) -> DataFrame:
    """The processor's output rows (kind alert | decision | late | duplicate) for the configured
    source. `processor` replaces FraudDetector in the same plan (bench.streaming's engine floor)."""
    packed = packed_inputs(spark, cfg, settings)
    return packed.groupBy("bucket").transformWithStateInPandas(
        statefulProcessor=processor
        or FraudDetector(str(cfg.profiles_snapshot), str(cfg.rules_snapshot)),
        outputStructType=OUTPUT_SCHEMA,
        outputMode="Append",
        timeMode="EventTime",
    )


class FraudBatchWriter:
    """foreachBatch: refresh averages, run the batch once, deliver alerts and late transactions."""

    def __init__(
        self,
        cfg: FraudJobConfig,
        sink,
        late_sink,
        refresher: ProfileRefresher,
        counters: FraudCounters,
        log=print,
        rules: RuleRefresher | None = None,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.late_sink = late_sink
        self.refresher = refresher
        self.counters = counters
        self.log = log
        self.rules = rules

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        # Before the batch runs: its tasks read the snapshots when they start.
        self.refresher.refresh()
        if self.rules is not None:
            self.rules.refresh()
        kinds: dict[str, list[OutputRow]] = {ALERT: [], DECISION: [], LATE: [], DUPLICATE: []}
        # As named tuples: a Row's attribute access is Python code (137,800 calls a micro-batch of
        # 25,000 events and 2,150 alerts, about 10 ms while the executors wait).
        for row in batch.collect():
            kinds[row[0]].append(OutputRow(*row))
        alerts, late, duplicates = kinds[ALERT], kinds[LATE], kinds[DUPLICATE]
        decisions = [(r.customer_id, r.value) for r in kinds[DECISION]]
        written = self.sink.write(
            batch_id, [(r.customer_id, r.value) for r in alerts], side={DECISIONS_SIDE: decisions}
        )
        published = 0
        if late:
            records = [(r.customer_id, with_batch_id(r.value, batch_id)) for r in late]
            published = self.late_sink.write(batch_id, records)
            self._log_late(batch_id, late, alerts, published)
        self.counters.batches += 1
        self.counters.alerts += len(alerts)
        # What reached the late topic (or file): a batch re-run into the file sink writes nothing.
        self.counters.late += published
        self.counters.duplicates += len(duplicates)
        self.counters.decisions += len(decisions) if written else 0
        self.counters.by_rule.update(r.rule for r in alerts)
        if alerts or duplicates:
            rules = Counter(r.rule for r in alerts)
            self.log(
                f"batch {batch_id}: {len(alerts)} alerts {dict(rules)} ({written} written to "
                f"{self.sink.describe()}), {len(duplicates)} redelivered rows ignored"
            )

    def _log_late(self, batch_id: int, late, alerts, published: int) -> None:
        late_ids = {r.transaction_id for r in late}
        alerted = sum(1 for r in alerts if r.transaction_id in late_ids)
        self.log(
            f"batch {batch_id}: {len(late)} transactions behind the watermark (allowed lateness "
            f"{self.cfg.allowed_lateness_ms / 1000:g} s), judged by AMOUNT_ANOMALY only "
            f"({alerted} alerts); {published} written to {self.late_sink.describe()}"
        )


@dataclass
class FraudRun:
    spark: SparkSession
    query: object
    counters: FraudCounters
    sink: object
    late_sink: object
    recorder: ProgressRecorder
    listener: object
    rules: RuleRefresher | None = None

    def close(self) -> None:
        """After the query ended: flush the sinks, record the final status, detach the listener."""
        self.sink.close()
        self.late_sink.close()
        if self.rules is not None:
            self.rules.source.close()
        error = self.query.exception()
        self.recorder.update(
            QUERY,
            status="failed" if error else "stopped",
            heartbeat_at=time.time(),
            exception=None if error is None else str(error),
        )
        self.spark.streams.removeListener(self.listener)


def start_fraud_query(
    spark: SparkSession, cfg: FraudJobConfig, settings: Settings, log=print
) -> FraudRun:
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    quiet_state_server(spark)
    source = ProfileSource(cfg.profiles, settings)
    refresher = ProfileRefresher(
        source, ProfileSnapshot(cfg.profiles_snapshot), cfg.profiles_refresh_s, log
    )
    refresher.refresh(force=True)  # the first batch already judges amounts
    rules = RuleRefresher(cfg.rule_source(settings), RuleSnapshot(cfg.rules_snapshot), log)
    rules.refresh()  # and by the stored rule history
    if cfg.output is not None:
        sink = JsonLinesPublisher(cfg.output, cfg.workdir / "file_sink.json")
        late_sink = JsonLinesPublisher(cfg.late_output, cfg.workdir / "late_sink.json")
    else:
        # A project topic is created when missing (a home whose services were started before the
        # late topic existed); any other topic must exist (TopicPublisher checks).
        outputs = (cfg.alerts_topic, cfg.late_topic, cfg.decisions_topic)
        project = [BY_NAME[t] for t in outputs if t in BY_NAME]
        if project:
            ensure_topics(project, settings)
        sink = TransactionalTopicPublisher(
            cfg.alerts_topic,
            settings,
            transactional_id_for(cfg.workdir),
            side_topics={DECISIONS_SIDE: cfg.decisions_topic},
            epoch=lambda: checkpoint_epoch(cfg.checkpoint_dir),
            log=log,
        )
        log(f"{QUERY}: alerts committed up to batch {sink.committed_batch} (transactional sink)")
        late_sink = TopicPublisher(cfg.late_topic, settings)
    counters = FraudCounters()
    recorder = ProgressRecorder(
        cfg.progress_file or progress_path(settings, JOB),
        JOB,
        lambda: {
            **counters.as_dict(),
            "profiles_customers": refresher.customers,
            "profiles_loaded_at": refresher.loaded_at,
            "rule_set_version": rules.version,
            "rules_source": rules.source.describe(),
            "source": cfg.source.describe(),
            "sink": sink.describe(),
            "late_sink": late_sink.describe(),
            "allowed_lateness_ms": cfg.allowed_lateness_ms,
        },
    )
    listener = make_listener({QUERY: recorder})
    spark.streams.addListener(listener)
    writer = (
        alert_stream(spark, cfg, settings)
        .writeStream.queryName(QUERY)
        .foreachBatch(
            FraudBatchWriter(
                cfg,
                sink,
                late_sink,
                refresher,
                counters,
                log,
                rules=rules,
            )
        )
        .option("checkpointLocation", str(cfg.checkpoint_dir))
    )
    if cfg.source.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{cfg.trigger_seconds} seconds")
    log(
        f"{QUERY}: {cfg.source.describe()} -> {sink.describe()}, late transactions -> "
        f"{late_sink.describe()}, allowed lateness "
        f"{cfg.allowed_lateness_ms / 1000:g} s, averages from {source.describe()}, rules from "
        f"{rules.source.describe()} (v{rules.version}), work dir {cfg.workdir}"
    )
    return FraudRun(spark, writer.start(), counters, sink, late_sink, recorder, listener, rules)


def stop_between_batches(query, wait_s: float = 20.0) -> None:
    """Stop a query, preferably while no micro-batch runs: interrupting the Python stateful
    operator mid-batch is safe (the batch is re-run from the checkpoint) but makes Spark log a
    long stack trace. After `wait_s` it is stopped anyway."""
    deadline = time.monotonic() + wait_s
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.1)
    query.stop()


def await_queries(queries, log=print) -> int:
    """Wait until every query ends (file mode) or SIGTERM/SIGINT arrives (then stop them cleanly)."""
    stopping = {"signal": None}

    def on_signal(signum, frame):
        stopping["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while any(q.isActive for q in queries):
            if stopping["signal"] is not None:
                log(
                    f"signal {stopping['signal']}: stopping {len(queries)} queries (they resume from "
                    f"their checkpoints)"
                )
                for q in queries:
                    stop_between_batches(q)
                break
            time.sleep(0.5)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    failed = [q for q in queries if q.exception() is not None]
    for q in failed:
        log(f"query {q.name} failed: {q.exception()}")
    return 1 if failed else 0


def run_fraud_job(cfg: FraudJobConfig, settings: Settings, fresh: bool = False, log=print) -> int:
    from darooghe.spark import spark_session

    if fresh and cfg.workdir.exists():
        log(f"--fresh: removing {cfg.workdir}")
        shutil.rmtree(cfg.workdir)
    t0 = time.monotonic()
    spark = spark_session("darooghe-fraud-detection", settings, ui=True)
    run = start_fraud_query(spark, cfg, settings, log)
    status = await_queries([run.query], log)
    run.close()
    spark.stop()  # drains the listener bus while this process can still answer it
    entry = run.recorder.entry(QUERY)
    c = run.counters
    log(
        f"{QUERY}: {'failed' if status else 'done'} after {time.monotonic() - t0:.1f} s: "
        f"{c.batches} batches, {entry.get('input_rows_total', 0)} input rows, {c.alerts} alerts "
        f"{dict(c.by_rule)}, {c.late} late, {c.duplicates} redelivered"
    )
    return status
