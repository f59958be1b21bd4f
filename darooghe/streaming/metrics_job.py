"""Live commission metrics: three streaming queries feeding four topics.

| query              | window                      | group             | topics                                   |
|--------------------|-----------------------------|-------------------|------------------------------------------|
| category_windows   | 1 min sliding every 20 s    | merchant_category | metrics.category_volume, .commission_ratio |
| commission_by_type | 1 min tumbling              | commission_type   | metrics.commission_by_type               |
| merchant_windows   | 5 min tumbling              | merchant_id       | metrics.top_merchants (top 5, ranked)    |

As in the batch layer, volume counts every valid transaction while commission
figures count approved transactions only (a declined or pending payment collects nothing):
`commission_ratio` = approved commission / approved amount.

Event time with a watermark of the allowed lateness; update output mode, so a window is re-emitted
in every micro-batch that changes it and is final once the watermark passes its end (Spark then
drops its state; rows later than that are counted by Spark as dropped by the watermark and show in
the progress file). Every value carries a deterministic `metric_id` (topic, window, group or rank):
consumers upsert, and the last value per id is the window's result.

Top merchants: a 5-minute window's ranking needs all its merchants, but an update-mode batch only
holds the merchants that changed. foreachBatch therefore merges the batch's absolute per-merchant
totals into a small per-window store in the work directory and re-ranks the windows it touched.
Absolute totals make the merge idempotent: a batch replayed after a crash writes the same values.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from darooghe.config import Settings
from darooghe.fraud.txn import iso_ms
from darooghe.streaming.metric_contract import metric_id, top_ranked
from darooghe.streaming.options import DEFAULT_LATENESS_MS, DEFAULT_TRIGGER_SECONDS
from darooghe.streaming.progress import ProgressRecorder, make_listener, progress_path
from darooghe.streaming.publishers import JsonLinesPublisher, TopicPublisher, side_output_path
from darooghe.streaming.sources import SourceConfig, parse_transactions, read_records, workdir_for
from darooghe.topics import (
    METRICS_CATEGORY_VOLUME,
    METRICS_COMMISSION_BY_TYPE,
    METRICS_COMMISSION_RATIO,
    METRICS_TOP_MERCHANTS,
)
from darooghe.validation.clock import watermark_delay_ms

JOB = "stream-metrics"
APPROVED = "approved"


def metric_name(topic: str) -> str:
    """darooghe.metrics.category_volume -> category_volume"""
    return topic.rsplit(".", 1)[-1]


def default_workdir(settings: Settings, source: SourceConfig, output: Path | None) -> Path:
    base = settings.checkpoints_dir / "live_metrics"
    return workdir_for(base, source, output)


@dataclass(frozen=True)
class MetricsJobConfig:
    source: SourceConfig
    workdir: Path
    output: Path | None = None
    allowed_lateness_ms: int = DEFAULT_LATENESS_MS
    trigger_seconds: float = DEFAULT_TRIGGER_SECONDS["metrics"]
    progress_file: Path | None = None
    #: Windows starting before this instant are not computed (None: every window of the source).
    since_ms: int | None = None

    def checkpoint_dir(self, query: str) -> Path:
        return self.workdir / "checkpoint" / query


#: The longest window of the live metrics (top merchants): an event this much before the cutoff can
#: still fall into a window that starts at it.
LONGEST_WINDOW_MS = 5 * 60_000


def windows_cutoff(cfg: MetricsJobConfig) -> int | None:
    """The first window start the job computes, fixed by the work directory's first start.

    Not a Kafka starting timestamp: the broker answers a timestamp lookup with the first batch whose
    time is later, and on a transactional topic that is the first commit marker the validator wrote
    after it (stamped with the wall clock): measured on the demo's replayed week, it started 6,845
    records into a 49,721-record partition. So the job reads the topic and skips the old windows;
    the cutoff is kept beside the checkpoint so that a restart and a re-run batch skip the same.
    """
    path = cfg.workdir / "windows_since.json"
    if path.exists():
        return json.loads(path.read_text())["since_ms"]
    if cfg.since_ms is None or (cfg.workdir / "checkpoint").exists():
        return None  # every window, or a work directory started before cutoffs existed
    since = cfg.since_ms - cfg.since_ms % LONGEST_WINDOW_MS  # on a window boundary of every metric
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"since_ms": since}))
    return since


# --- the aggregations (each a function of the parsed transaction stream) ----------------------


def _window_columns(df: DataFrame) -> DataFrame:
    return (
        df.withColumn("window_start_ms", F.unix_millis("window.start"))
        .withColumn("window_end_ms", F.unix_millis("window.end"))
        .drop("window")
    )


def _approved(column: str):
    return F.when(F.col("status") == APPROVED, F.col(column)).otherwise(F.lit(0))


def category_windows(tx: DataFrame) -> DataFrame:
    """Per category and 1-minute window sliding every 20 s: volume of all, commission of approved."""
    agg = tx.groupBy(F.window("event_time", "1 minute", "20 seconds"), "merchant_category").agg(
        F.count(F.lit(1)).alias("transaction_count"),
        F.sum("amount").alias("total_amount"),
        F.sum(_approved("commission_amount")).alias("approved_commission"),
        F.sum(_approved("amount")).alias("approved_amount"),
    )
    return _window_columns(agg)


def _approved_commission(tx: DataFrame, window: str, by: str) -> DataFrame:
    """Per `by` and tumbling `window`: commission and count of the approved transactions."""
    agg = (
        tx.where(F.col("status") == APPROVED)
        .groupBy(F.window("event_time", window), by)
        .agg(
            F.sum("commission_amount").alias("total_commission"),
            F.count(F.lit(1)).alias("transaction_count"),
        )
    )
    return _window_columns(agg)


def commission_by_type(tx: DataFrame) -> DataFrame:
    """Per commission type and minute: approved commission and count."""
    return _approved_commission(tx, "1 minute", "commission_type")


def merchant_windows(tx: DataFrame) -> DataFrame:
    """Per merchant and 5-minute window: approved commission and count (ranked in foreachBatch)."""
    return _approved_commission(tx, "5 minutes", "merchant_id")


# --- metric values (plain Python on the collected rows of a batch) ------------------------------


def _window(topic: str, start_ms: int, end_ms: int, group: str) -> dict:
    return {
        "metric_id": metric_id(topic, start_ms, group),
        "window_start": iso_ms(start_ms),
        "window_end": iso_ms(end_ms),
    }


def category_volume_value(r) -> dict:
    topic = METRICS_CATEGORY_VOLUME.name
    return {
        **_window(topic, r.window_start_ms, r.window_end_ms, r.merchant_category),
        "merchant_category": r.merchant_category,
        "transaction_count": int(r.transaction_count),
        "total_amount": int(r.total_amount),
    }


def commission_ratio_value(r) -> dict:
    topic = METRICS_COMMISSION_RATIO.name
    amount, commission = int(r.approved_amount), int(r.approved_commission)
    return {
        **_window(topic, r.window_start_ms, r.window_end_ms, r.merchant_category),
        "merchant_category": r.merchant_category,
        "total_commission": commission,
        "total_amount": amount,
        "commission_ratio": commission / amount if amount else None,
    }


def commission_by_type_value(r) -> dict:
    topic = METRICS_COMMISSION_BY_TYPE.name
    return {
        **_window(topic, r.window_start_ms, r.window_end_ms, r.commission_type),
        "commission_type": r.commission_type,
        "total_commission": int(r.total_commission),
        "transaction_count": int(r.transaction_count),
    }


class TopMerchantsRanker:
    """Per-window merchant totals on disk (one JSON file per open window) and their top 5."""

    def __init__(self, directory: Path, keep_ms: int) -> None:
        self.directory = directory
        self.keep_ms = keep_ms  # windows ending this long before the newest one are closed
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, start_ms: int) -> Path:
        return self.directory / f"{start_ms}.json"

    def _load(self, start_ms: int) -> dict:
        try:
            return json.loads(self._path(start_ms).read_text())
        except FileNotFoundError:
            return {"window_start_ms": start_ms, "merchants": {}}

    def _save(self, doc: dict) -> None:
        path = self._path(doc["window_start_ms"])
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True))
        os.replace(tmp, path)

    def update(self, rows) -> list[dict]:
        """Merge absolute (window, merchant) totals; return the ranked values of touched windows."""
        touched: dict[int, dict] = {}
        for r in rows:
            doc = touched.get(r.window_start_ms) or self._load(r.window_start_ms)
            doc["window_end_ms"] = r.window_end_ms
            doc["merchants"][r.merchant_id] = [int(r.total_commission), int(r.transaction_count)]
            touched[r.window_start_ms] = doc
        values = []
        for start_ms, doc in sorted(touched.items()):
            self._save(doc)
            values.extend(self.ranked(doc))
        if touched:
            self._close_old(max(d["window_end_ms"] for d in touched.values()))
        return values

    @staticmethod
    def ranked(doc: dict) -> list[dict]:
        topic = METRICS_TOP_MERCHANTS.name
        order = top_ranked(doc["merchants"].items(), lambda kv: kv[0], lambda kv: kv[1][0])
        return [
            {
                **_window(topic, doc["window_start_ms"], doc["window_end_ms"], f"rank{rank}"),
                "rank": rank,
                "merchant_id": mid,
                "total_commission": commission,
                "transaction_count": count,
            }
            for rank, (mid, (commission, count)) in order
        ]

    def _close_old(self, newest_end_ms: int) -> None:
        for path in self.directory.glob("*.json"):
            start_ms = int(path.stem)
            if start_ms + 5 * 60_000 < newest_end_ms - self.keep_ms:
                path.unlink(missing_ok=True)


# --- the queries ----------------------------------------------------------------------------------


@dataclass
class MetricsCounters:
    batches: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"batches": dict(self.batches), "values_written": dict(self.values)}


class MetricsBatchWriter:
    """foreachBatch of one query: turn its rows into metric values and write them to their topics."""

    def __init__(
        self, query: str, outputs, sinks: dict, counters: MetricsCounters, ranker=None, log=print
    ):
        self.query = query
        self.outputs = outputs  # [(topic, row -> value)] or the ranker for top merchants
        self.sinks = sinks
        self.counters = counters
        self.ranker = ranker
        self.log = log

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        rows = batch.collect()
        if self.ranker is not None:
            per_topic = {METRICS_TOP_MERCHANTS.name: self.ranker.update(rows)}
        else:
            per_topic = {topic: [to_value(r) for r in rows] for topic, to_value in self.outputs}
        for topic, values in per_topic.items():
            records = [(v["metric_id"], json.dumps(v, separators=(",", ":"))) for v in values]
            self.sinks[topic].write(batch_id, records)
            name = metric_name(topic)
            self.counters.values[name] = self.counters.values.get(name, 0) + len(records)
        self.counters.batches[self.query] = self.counters.batches.get(self.query, 0) + 1


@dataclass
class MetricsRun:
    spark: SparkSession
    queries: list
    counters: MetricsCounters
    sinks: dict
    recorder: ProgressRecorder
    listener: object

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.spark.streams.removeListener(self.listener)  # before the final statuses (see progress)
        for q in self.queries:
            error = q.exception()
            self.recorder.update(
                q.name,
                status="failed" if error else "stopped",
                heartbeat_at=time.time(),
                exception=None if error is None else str(error),
            )


METRIC_TOPICS = (
    METRICS_CATEGORY_VOLUME,
    METRICS_COMMISSION_BY_TYPE,
    METRICS_COMMISSION_RATIO,
    METRICS_TOP_MERCHANTS,
)


def start_metrics_queries(
    spark: SparkSession, cfg: MetricsJobConfig, settings: Settings, log=print
) -> MetricsRun:
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    sinks = {}
    for topic in METRIC_TOPICS:
        name = metric_name(topic.name)
        if cfg.output is not None:
            sinks[topic.name] = JsonLinesPublisher(
                side_output_path(cfg.output, name), cfg.workdir / f"file_sink.{name}.json"
            )
        else:
            sinks[topic.name] = TopicPublisher(topic.name, settings)
    counters = MetricsCounters()
    recorder = ProgressRecorder(
        cfg.progress_file or progress_path(settings, JOB), JOB, counters.as_dict
    )
    lateness = f"{watermark_delay_ms(cfg.allowed_lateness_ms, settings)} milliseconds"
    ranker = TopMerchantsRanker(
        cfg.workdir / "top_merchants", keep_ms=cfg.allowed_lateness_ms + 10 * 60_000
    )
    plans = [
        (
            "category_windows",
            category_windows,
            [
                (METRICS_CATEGORY_VOLUME.name, category_volume_value),
                (METRICS_COMMISSION_RATIO.name, commission_ratio_value),
            ],
            None,
        ),
        (
            "commission_by_type",
            commission_by_type,
            [(METRICS_COMMISSION_BY_TYPE.name, commission_by_type_value)],
            None,
        ),
        ("merchant_windows", merchant_windows, [], ranker),
    ]
    listener = make_listener({f"live_metrics.{name}": recorder for name, *_ in plans})
    spark.streams.addListener(listener)
    queries = []
    since = windows_cutoff(cfg)
    for name, aggregate, outputs, rank in plans:
        tx = parse_transactions(read_records(spark, cfg.source, settings))
        if since is not None:
            tx = tx.where(F.unix_millis("event_time") >= since - LONGEST_WINDOW_MS)
        windows = aggregate(tx.withWatermark("event_time", lateness))
        if since is not None:
            windows = windows.where(F.col("window_start_ms") >= since)  # no partial window
        writer = (
            windows.writeStream.queryName(f"live_metrics.{name}")
            .outputMode("update")
            .foreachBatch(MetricsBatchWriter(name, outputs, sinks, counters, rank, log))
            .option("checkpointLocation", str(cfg.checkpoint_dir(name)))
        )
        if cfg.source.available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{cfg.trigger_seconds} seconds")
        queries.append(writer.start())
    log(
        f"live_metrics: {cfg.source.describe()}"
        + (f" (windows from {iso_ms(since)} on)" if since is not None else "")
        + " -> "
        f"{', '.join(s.describe() for s in sinks.values())}; allowed lateness "
        f"{cfg.allowed_lateness_ms / 1000:g} s, work dir {cfg.workdir}"
    )
    return MetricsRun(spark, queries, counters, sinks, recorder, listener)


def run_metrics_job(
    cfg: MetricsJobConfig, settings: Settings, fresh: bool = False, log=print
) -> int:
    from darooghe.spark import spark_session
    from darooghe.streaming.fraud_job import await_queries

    if fresh and cfg.workdir.exists():
        log(f"--fresh: removing {cfg.workdir}")
        shutil.rmtree(cfg.workdir)
    t0 = time.monotonic()
    spark = spark_session("darooghe-live-metrics", settings, ui=True)
    run = start_metrics_queries(spark, cfg, settings, log)
    status = await_queries(run.queries, log)
    run.close()
    spark.stop()  # drains the listener bus while this process can still answer it
    log(
        f"live_metrics: {'failed' if status else 'done'} after {time.monotonic() - t0:.1f} s: "
        f"{run.counters.as_dict()}"
    )
    return status
