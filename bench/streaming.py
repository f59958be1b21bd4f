"""Streaming fraud job: alert latency at 1,000 events/s and sustained rate, beside a passthrough.

    .venv/bin/python -m bench.streaming [--rate 1000] [--seconds 12] [--backlog 300000]
                                        [--max-offsets 25000] [--trigger-seconds 0.5]
                                        [--with-validator] [--masters local[2],cluster]

Both figures are measured for the fraud job (darooghe.streaming.fraud_job, exactly as `darooghe
stream fraud` runs it: Kafka source, transformWithState, foreachBatch to a Kafka topic) and for a
stateless Kafka-to-Kafka Spark passthrough (read key and value, write them unchanged: the engine's
own floor), in the same Spark session, one after the other, on fresh topics of the broker of the
settings (the dev stack by default), deleted at the end.

- latency: events produced live at --rate for --seconds (record timestamp = send time, 2% amount
  spikes so the fraud job alerts); latency = record timestamp of the output record (the alert, or
  the passthrough copy) - record timestamp of its transaction; p50, p99, max. With
  --with-validator the events are produced as raw transactions and the project's validator (its
  own process, exactly once, as `darooghe validate` runs it) feeds the job's topic: the latency is
  then from the raw record to the alert, with the validator competing for the same cores.
- sustained rate: a backlog of --backlog events, consumed in micro-batches of --max-offsets; rate =
  rows / time of every batch after the first (warm-up), i.e. the rate the job keeps up with. The
  default backlog is what the job holds at 1,000 events/s (its 5-minute horizon) and gives 11
  measured batches (100,000 gave 3, with the JIT still warming up; README, "The end of a
  backlog"); and
  events per CPU-second of the whole process tree (driver, JVM, Python workers), the figure that
  depends least on what else the shared machine runs.
- quality: of the latency run, per rule precision, recall and false-positive rate against the
  events' labels (the bench labels its amount spikes in the `darooghe-label` header, so only
  AMOUNT_ANOMALY has them) and the agreement with the oracle (darooghe.fraud.quality), with the
  first wrong alerts.
- engine floor: the fraud job's own plan (read, parse, pack, transformWithStateInPandas,
  foreachBatch) with a processor that judges nothing, sustained on the same backlog: what Spark's
  stateful Python stage costs before any rule. fraud / floor is what the rules, their state and
  the alerts cost; floor / passthrough is the ceiling of fraud / passthrough.
Events: 50,000 customers (about one payment per customer per minute at 1,000 events/s).
After the sustained run of the fraud job, Spark's own figures for its micro-batches (median per
batch of each `durationMs` phase and of the stateful operator's metrics) say where a batch's time
goes on the JVM side (the Python worker's share is measured with py-spy: README, Tests and benchmarks).
Targets: fraud p99 <= 2 s at 1,000 events/s with the validator; >= 20,000 events/s
sustained and >= 0.4 x the passthrough.

`--masters local[2],cluster` measures everything once per Spark master, in one run, on the same
Kafka, and prints a table of both (with DAROOGHE_TOPOLOGY=cluster: the three brokers, topics
replicated 3 ways; `cluster` is the standalone master of `darooghe services up --cluster`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from darooghe.config import load_settings
from darooghe.fraud.profiles import write_profiles_file
from darooghe.fraud.quality import quality_from_kafka
from darooghe.fraud.txn import iso_ms
from darooghe.kafka_io import (
    admin_client,
    consumer_config,
    ensure_topics,
    existing_topics,
    produce_when_room,
    producer_config,
)
from darooghe.schema import AMOUNT_ANOMALY
from darooghe.streaming.options import DEFAULT_TRIGGER_SECONDS
from darooghe.streaming.sources import kafka_stream
from darooghe.topics import LABEL_HEADER, Topic

AVERAGE = 200_000.0
WARMUP_S = 8
SPIKE_AMOUNT = 5_000_000  # 25 x the average: AMOUNT_ANOMALY


CUSTOMERS = 50_000  # at 1,000 events/s about one payment per customer per minute


class Events:
    """Valid-transaction values, fast: a template filled per event; 2% amount spikes."""

    def __init__(
        self, customers: int = CUSTOMERS, spike_share: float = 0.02, seed: int = 1
    ) -> None:
        self.rng = random.Random(seed)
        self.customers = customers
        self.spike_share = spike_share

    def make(self, event_ms: int) -> tuple[bytes, bytes, str, bool]:
        rng = self.rng
        tid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        customer = f"cust_{rng.randrange(self.customers)}"
        spike = rng.random() < self.spike_share
        amount = SPIKE_AMOUNT if spike else rng.randrange(50, 300) * 1000
        fee, tax = amount * 2 // 100, amount * 9 // 100
        value = (
            f'{{"transaction_id":"{tid}","timestamp":"{iso_ms(event_ms)}","customer_id":"{customer}",'
            f'"merchant_id":"merch_{rng.randrange(50)}","merchant_category":"retail","payment_method":"pos",'
            f'"amount":{amount},"location":{{"lat":35.7,"lng":51.4}},"device_info":{{}},'
            f'"status":"approved","commission_type":"flat","commission_amount":{fee},"vat_amount":{tax},'
            f'"total_amount":{amount + fee + tax},"customer_type":"individual","risk_level":1,'
            f'"failure_reason":null}}'
        )
        return customer.encode(), value.encode(), tid, spike


def produce_live(settings, topic: str, rate: int, seconds: float, events: Events) -> dict[str, int]:
    """Paced production; returns transaction_id -> record timestamp (ms) of every event sent after
    the first WARMUP_S seconds (the first batches of a query pay for starting Python workers)."""
    producer = Producer(producer_config(settings, **{"linger.ms": 5}))
    sent: dict[str, int] = {}
    t0 = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - t0) < WARMUP_S + seconds:
        due = int(elapsed * rate)
        while n < due:
            now = time.time_ns() // 1_000_000
            key, value, tid, spike = events.make(now)
            headers = [(LABEL_HEADER, AMOUNT_ANOMALY.encode())] if spike else None
            producer.produce(topic, key=key, value=value, timestamp=now, headers=headers)
            if elapsed >= WARMUP_S:
                sent[tid] = now
            n += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(30)
    return sent


def preload(settings, topic: str, n: int, rate: int, events: Events) -> None:
    """n events with event times spaced as at `rate`, ending now."""
    producer = Producer(producer_config(settings))
    start = time.time_ns() // 1_000_000 - n * 1000 // rate
    for i in range(n):
        ts = start + i * 1000 // rate
        key, value, _, _ = events.make(ts)
        produce_when_room(producer, topic, value, key, ts)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)


def read_output(settings, topic: str, expect: int, timeout: float) -> list[tuple[int, bytes]]:
    """(record timestamp, value) of `topic` once it holds `expect` records (or after timeout)."""
    consumer = Consumer(consumer_config(None, settings, **{"enable.partition.eof": False}))
    parts = existing_topics(admin_client(settings))[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in range(parts)])
    out: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for m in consumer.consume(10_000, timeout=0.5):
                if not m.error():
                    out.append((m.timestamp()[1], m.value()))
    finally:
        consumer.close()
    return out


def percentiles(latencies_ms: list[int]) -> dict:
    if not latencies_ms:
        return {"n": 0}
    q = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {
        "n": len(latencies_ms),
        "p50_s": q[49] / 1000,
        "p99_s": q[98] / 1000,
        "max_s": max(latencies_ms) / 1000,
    }


def start_passthrough(
    spark, settings, source: str, sink: str, checkpoint, trigger_s, max_offsets=None
):
    return (
        kafka_stream(spark, settings, source, max_offsets)  # the fraud job's own reader
        .load()
        .select("key", "value")
        .writeStream.format("kafka")
        .queryName("bench_passthrough")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("topic", sink)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime=f"{trigger_s} seconds")
        .start()
    )


def start_floor(spark, settings, cfg):
    """The fraud job's plan (read, parse, watermark, pack, transformWithStateInPandas in event time,
    foreachBatch collecting the output in the driver) with a processor that judges nothing: what
    the engine costs before any rule, state or alert (bench.fraud_stages cuts the plan further)."""
    from pyspark.sql.streaming import StatefulProcessor

    from darooghe.streaming.fraud_job import alert_stream

    class EmptyProcessor(StatefulProcessor):  # local: pickled by value (bench is not installed)
        def init(self, handle) -> None:
            pass

        def handleInputRows(self, key, rows, timerValues):
            for _ in rows:  # the packed rows still cross to Python
                pass
            return iter(())

        def close(self) -> None:
            pass

    plan = alert_stream(spark, cfg, settings, processor=EmptyProcessor())
    return start_collecting(plan, "bench_floor", cfg.checkpoint_dir)


def start_collecting(df, name: str, checkpoint):
    """A query consuming as fast as it can whose output goes to the driver and no further
    (foreachBatch collecting each micro-batch, as the fraud job's foreachBatch does)."""
    return (
        df.writeStream.foreachBatch(lambda batch, batch_id: batch.collect())
        .queryName(name)
        .option("checkpointLocation", str(checkpoint))
        .trigger(processingTime="0 seconds")
        .start()
    )


def wait_ready(query, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while query.lastProgress is None:
        if query.exception() is not None:
            raise RuntimeError(str(query.exception()))
        if time.monotonic() > deadline:
            raise TimeoutError(f"query {query.name} made no progress in {timeout} s")
        time.sleep(0.2)


def tree_cpu_seconds() -> float:
    """CPU time of this process and its children (the JVM, Python workers) so far; on the local
    standalone cluster also of the workers' children (the executors and their Python workers)."""
    import psutil

    from darooghe.services import spark_standalone
    from darooghe.services.process import ManagedProcess

    total = 0.0
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    settings = load_settings()
    for name in spark_standalone.worker_names(settings):
        pid = ManagedProcess(name, settings).pid()
        with contextlib.suppress(psutil.Error):
            procs += psutil.Process(pid).children(recursive=True) if pid else []
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def start_validator(settings, source: str, valid: str, errors: str, group: str):
    """The project's validator in its own process (as `darooghe validate` runs it)."""
    env = {
        **os.environ,
        "DAROOGHE_HOME": str(settings.home),
        "DAROOGHE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }
    cmd = [sys.executable, "-m", "darooghe.cli", "validate", "--source", "kafka"]
    cmd += ["--input-topic", source, "--valid-topic", valid, "--error-topic", errors]
    cmd += ["--group", group, "--instance", "bench"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_validator(proc) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def batch_durations(progress: list[dict]) -> dict:
    """Micro-batches with input while events were produced live: how many, median and max ms."""
    ms = [p["durationMs"]["triggerExecution"] for p in progress if p["numInputRows"] > 0]
    if not ms:
        return {}
    return {"batches": len(ms), "batch_ms_p50": statistics.median(ms), "batch_ms_max": max(ms)}


def batch_breakdown(progress: list[dict]) -> dict:
    """Median per micro-batch (after the first) of Spark's phases and stateful-operator metrics."""
    steady = [p for p in progress if p["numInputRows"] > 0][1:]
    if not steady:
        return {}
    out = {}
    for phase in steady[0]["durationMs"]:
        out[f"ms.{phase}"] = statistics.median(p["durationMs"].get(phase, 0) for p in steady)
    ops = [p["stateOperators"][0] for p in steady if p.get("stateOperators")]
    for name in ("allUpdatesTimeMs", "allRemovalsTimeMs", "commitTimeMs", "numRowsTotal"):
        if ops and name in ops[0]:
            out[f"state.{name}"] = statistics.median(o[name] for o in ops)
    for name in ("memoryUsedBytes",):
        if ops and name in ops[0]:
            out[f"state.{name}"] = statistics.median(o[name] for o in ops)
    custom = ops[0].get("customMetrics", {}) if ops else {}
    for name in sorted(custom):
        if name.endswith(("TimeMs", "Ms")) or name.startswith("numValueStateVars"):
            out[f"state.{name}"] = statistics.median(o["customMetrics"].get(name, 0) for o in ops)
    out["rows_per_batch"] = statistics.median(p["numInputRows"] for p in steady)
    return out


def sustained_rate(query, rows: int, timeout: float = 300) -> dict:
    """Rows per second over every micro-batch after the first, once `rows` were consumed; also
    rows per CPU-second of the whole process tree (this machine is shared: wall-clock rates
    depend on what else runs, CPU cost does much less)."""
    deadline = time.monotonic() + timeout
    progress: dict[int, dict] = {}
    cpu0 = tree_cpu_seconds()
    while time.monotonic() < deadline:
        for p in query.recentProgress:
            progress[p.batchId] = json.loads(p.json)
        if sum(p["numInputRows"] for p in progress.values()) >= rows:
            break
        if query.exception() is not None:
            raise RuntimeError(str(query.exception()))
        time.sleep(0.5)
    cpu = tree_cpu_seconds() - cpu0
    batches = [p for _, p in sorted(progress.items()) if p["numInputRows"] > 0]
    steady = batches[1:]
    ms = sum(p["durationMs"]["triggerExecution"] for p in steady)
    n = sum(p["numInputRows"] for p in steady)
    return {
        "breakdown": batch_breakdown(batches),
        "batches": len(batches),
        "rows": sum(p["numInputRows"] for p in batches),
        "rate": n / (ms / 1000) if ms else 0.0,
        "rows_per_cpu_s": sum(p["numInputRows"] for p in batches) / cpu if cpu else 0.0,
        "batch_ms_p50": statistics.median(p["durationMs"]["triggerExecution"] for p in steady)
        if steady
        else None,
    }


def _thirds(latency: dict) -> str:
    return " / ".join("n/a" if v is None else f"{v:.2f}" for v in latency.get("p99_by_third_s", []))


def master_url(name: str, settings) -> str:
    """A --masters entry: `cluster` = the local standalone master (`services up --cluster`)."""
    return settings.spark_master_url if name == "cluster" else name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--backlog", type=int, default=300_000)
    parser.add_argument("--max-offsets", type=int, default=25_000)
    parser.add_argument(
        "--trigger-seconds",
        type=float,
        default=DEFAULT_TRIGGER_SECONDS["fraud"],
        help="micro-batch interval of both latency runs (default: the fraud job's)",
    )
    parser.add_argument(
        "--with-validator",
        action="store_true",
        help="latency runs: raw events through the project's validator (its own process)",
    )
    parser.add_argument(
        "--masters",
        default="",
        help="comma-separated Spark masters to measure one after the other in this run, e.g. "
        "`local[2],cluster` (cluster = the standalone master of `services up --cluster`); "
        "default: DAROOGHE_SPARK_MASTER",
    )
    args = parser.parse_args()
    settings = load_settings()
    masters = [m.strip() for m in args.masters.split(",") if m.strip()] or [settings.spark_master]
    summaries = {}
    for name in masters:
        url = master_url(name, settings)
        print(f"== Spark master {name} ({url}), Kafka {settings.kafka_bootstrap}", flush=True)
        summary = measure(dataclasses.replace(settings, spark_master=url), args)
        if summary is None:
            return 2
        summaries[name] = summary
    if len(summaries) > 1:
        print()
        print(
            f"{'master':<12} {'fraud p50 s':>11} {'fraud p99 s':>11} {'fraud ev/s':>10} "
            f"{'floor ev/s':>10} {'pass ev/s':>10} {'fraud ev/cpu-s':>14}"
        )
        for name, r in summaries.items():
            f = r["fraud_latency"]
            print(
                f"{name:<12} {f.get('p50_s', float('nan')):>11.2f} {f.get('p99_s', float('nan')):>11.2f} "
                f"{r['fraud_rate']['rate']:>10,.0f} {r['floor_rate']['rate']:>10,.0f} "
                f"{r['passthrough_rate']['rate']:>10,.0f} "
                f"{r['fraud_rate']['rows_per_cpu_s']:>14,.0f}"
            )
    return 0


def feed_live(settings, args, names: dict, phase: int, tag: str):
    """Produce --rate events for --seconds into the phase's live topic (seeded by the phase), or
    into its raw topic through a validator with --with-validator; (send times, the validator)."""
    validator = None
    if args.with_validator:
        raw, live = names[f"raw{phase}"], names[f"live{phase}"]
        validator = start_validator(settings, raw, live, names["errors"], f"bench-{tag}-{phase}")
    topic = names[f"raw{phase}"] if validator else names[f"live{phase}"]
    sent = produce_live(settings, topic, args.rate, args.seconds, Events(seed=phase))
    return sent, validator


def latencies(records: list, sent: dict) -> list:
    """Milliseconds from each transaction's send to the output record naming it."""
    return [latency for _, latency in timed_latencies(records, sent)]


def timed_latencies(records: list, sent: dict) -> list[tuple[int, int]]:
    """(send time, latency) in ms of each output record whose transaction was sent."""
    ids = [(ts, json.loads(v)["transaction_id"]) for ts, v in records]
    return [(sent[tid], ts - sent[tid]) for ts, tid in ids if tid in sent]


def p99_by_third(records: list, sent: dict) -> list[float | None]:
    """p99 (s) of the outputs of the transactions sent in each third of the measured window. Why:
    a fresh JVM's micro-batches keep shortening for about a minute (JIT), so the first third's
    tail is start-up and the last third's is the steady state; the overall p99 mixes both."""
    if not sent:
        return []
    start, end = min(sent.values()), max(sent.values()) + 1
    thirds: list[list[int]] = [[], [], []]
    for at, latency in timed_latencies(records, sent):
        thirds[min(2, 3 * (at - start) // (end - start))].append(latency)
    return [percentiles(t)["p99_s"] if len(t) > 1 else None for t in thirds]


def measure(settings, args) -> dict | None:
    """Every figure of the module docstring on settings.spark_master; None when Kafka is down."""
    from darooghe.spark import spark_session
    from darooghe.streaming.fraud_job import FraudJobConfig, start_fraud_query, stop_between_batches
    from darooghe.streaming.sources import SourceConfig

    tag = uuid.uuid4().hex[:8]
    names = {
        k: f"bench.streaming.{k}.{tag}"
        for k in (
            "live1",
            "alerts1",
            "late1",
            "decisions1",
            "live2",
            "copy2",
            "backlog",
            "alerts3",
            "late3",
            "decisions3",
            "copy4",
            "raw1",
            "raw2",
            "errors",
        )
    }
    parts = {
        "live1": 4,
        "live2": 4,
        "backlog": 4,
        "alerts1": 2,
        "alerts3": 2,
        "late1": 2,
        "late3": 2,
        "decisions1": 2,
        "decisions3": 2,
        "copy2": 4,
        "copy4": 4,
        "raw1": 4,
        "raw2": 4,
        "errors": 2,
    }
    try:
        ensure_topics(
            [Topic(names[k], parts[k], "bench", {"retention.ms": "3600000"}) for k in names],
            settings,
        )
    except Exception as exc:  # noqa: BLE001
        print(
            f"bench.streaming: Kafka at {settings.kafka_bootstrap} is not reachable ({exc}); "
            f"run `darooghe services up` first"
        )
        return None
    work = settings.checkpoints_dir / "bench" / tag
    write_profiles_file({f"cust_{i}": AVERAGE for i in range(CUSTOMERS)}, work / "profiles.jsonl")
    log = lambda m: None
    results = {}
    t_start = time.monotonic()
    spark = spark_session("darooghe-bench-streaming", settings)
    try:
        # 1. fraud job latency at --rate
        cfg = FraudJobConfig(
            source=SourceConfig("kafka", topic=names["live1"]),
            workdir=work / "fraud1",
            alerts_topic=names["alerts1"],
            late_topic=names["late1"],
            decisions_topic=names["decisions1"],
            profiles=work / "profiles.jsonl",
            trigger_seconds=args.trigger_seconds,
            progress_file=work / "fraud1.json",
        )
        run = start_fraud_query(spark, cfg, settings, log)
        wait_ready(run.query)
        sent, validator = feed_live(settings, args, names, 1, tag)
        replay = Events(seed=1)
        n_alerts = sum(replay.make(0)[3] for _ in range(int((WARMUP_S + args.seconds) * args.rate)))
        alerts = read_output(settings, names["alerts1"], n_alerts, timeout=60)
        live_batches = [json.loads(p.json) for p in run.query.recentProgress]
        stop_between_batches(run.query)
        run.close()
        if validator:
            stop_validator(validator)
        results["fraud_latency"] = {
            **percentiles(latencies(alerts, sent)),
            "p99_by_third_s": p99_by_third(alerts, sent),
            "alerts": len(alerts),
            "expected_alerts": n_alerts,
            **batch_durations(live_batches),
            "breakdown": batch_breakdown(live_batches),
        }
        print(f"fraud job latency at {args.rate}/s: {results['fraud_latency']}", flush=True)
        quality = quality_from_kafka(
            settings,
            names["live1"],
            names["alerts1"],
            {f"cust_{i}": AVERAGE for i in range(CUSTOMERS)},
            late_topic=names["late1"],
            labelled_rules=[AMOUNT_ANOMALY],
        )
        results["quality"] = quality

        # 2. passthrough latency at --rate
        q = start_passthrough(
            spark, settings, names["live2"], names["copy2"], work / "pass2", args.trigger_seconds
        )
        wait_ready(q)
        sent, validator = feed_live(settings, args, names, 2, tag)
        copies = read_output(
            settings, names["copy2"], int((WARMUP_S + args.seconds) * args.rate), timeout=60
        )
        stop_between_batches(q)
        if validator:
            stop_validator(validator)
        results["passthrough_latency"] = {
            **percentiles(latencies(copies, sent)),
            "p99_by_third_s": p99_by_third(copies, sent),
        }
        print(f"passthrough latency at {args.rate}/s: {results['passthrough_latency']}", flush=True)

        # 3. sustained rates on one backlog
        t0 = time.monotonic()
        preload(settings, names["backlog"], args.backlog, args.rate, Events(seed=3))
        print(
            f"backlog: {args.backlog} events preloaded in {time.monotonic() - t0:.1f} s", flush=True
        )
        cfg = FraudJobConfig(
            source=SourceConfig(
                "kafka", topic=names["backlog"], max_offsets_per_trigger=args.max_offsets
            ),
            workdir=work / "fraud3",
            alerts_topic=names["alerts3"],
            late_topic=names["late3"],
            decisions_topic=names["decisions3"],
            profiles=work / "profiles.jsonl",
            trigger_seconds=0,
            progress_file=work / "fraud3.json",
        )
        run = start_fraud_query(spark, cfg, settings, log)
        results["fraud_rate"] = sustained_rate(run.query, args.backlog)
        stop_between_batches(run.query)
        run.close()
        results["fraud_rate"]["late_rows"] = run.counters.late
        print(f"fraud job sustained: {results['fraud_rate']}", flush=True)
        q = start_floor(spark, settings, dataclasses.replace(cfg, workdir=work / "floor"))
        results["floor_rate"] = sustained_rate(q, args.backlog)
        stop_between_batches(q)
        print(f"engine floor sustained: {results['floor_rate']}", flush=True)
        q = start_passthrough(
            spark, settings, names["backlog"], names["copy4"], work / "pass4", 0, args.max_offsets
        )
        results["passthrough_rate"] = sustained_rate(q, args.backlog)
        stop_between_batches(q)
        print(f"passthrough sustained: {results['passthrough_rate']}", flush=True)
    finally:
        spark.stop()
        admin = admin_client(settings)  # keep the client alive until the deletions are done
        for future in admin.delete_topics(list(names.values())).values():
            future.result(30)
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # checkpoints/bench, when no other run uses it

    f, p = results["fraud_latency"], results["passthrough_latency"]
    fr, pr = results["fraud_rate"]["rate"], results["passthrough_rate"]["rate"]
    print()
    print(
        f"alert latency at {args.rate} events/s: fraud p50 {f.get('p50_s', float('nan')):.2f} s, "
        f"p99 {f.get('p99_s', float('nan')):.2f} s ({f['alerts']}/{f['expected_alerts']} alerts); passthrough "
        f"p50 {p.get('p50_s', float('nan')):.2f} s, p99 {p.get('p99_s', float('nan')):.2f} s; "
        f"p99 ratio {f.get('p99_s', 0) / p['p99_s'] if p.get('p99_s') else float('nan'):.2f} "
        f"({'with' if args.with_validator else 'without'} the validator; target p99 <= 2 s with it)"
    )
    print(
        f"p99 by third of the live run (JIT warm-up to steady state), s: fraud "
        f"{_thirds(f)}, passthrough {_thirds(p)}"
    )
    print("\n".join(results["quality"].lines()))
    print(f"fraud job live micro-batch (Spark, median): {f.get('breakdown')}")
    print(f"fraud job micro-batch (Spark, median): {results['fraud_rate']['breakdown']}")
    fc, pc = results["fraud_rate"]["rows_per_cpu_s"], results["passthrough_rate"]["rows_per_cpu_s"]
    print(
        f"CPU cost: fraud {fc:,.0f} events per CPU-second, passthrough {pc:,.0f} "
        f"(ratio {fc / pc if pc else 0:.2f}); load average during the run "
        f"{os.getloadavg()[1]:.1f} on {os.cpu_count()} cores"
    )
    print(f"engine floor micro-batch (Spark, median): {results['floor_rate']['breakdown']}")
    print(
        f"sustained: fraud {fr:,.0f} events/s, passthrough {pr:,.0f} events/s, ratio {fr / pr if pr else 0:.2f} "
        f"(target >= 20,000 events/s and >= 0.4); {time.monotonic() - t_start:.0f} s in all"
    )
    fl = results["floor_rate"]["rate"]
    print(
        f"engine floor (the fraud job's plan, a processor that judges nothing): {fl:,.0f} events/s, "
        f"{results['floor_rate']['rows_per_cpu_s']:,.0f} per CPU-second; floor / passthrough "
        f"{fl / pr if pr else 0:.2f}, fraud / floor {fr / fl if fl else 0:.2f}"
    )
    return results


if __name__ == "__main__":
    raise SystemExit(main())
