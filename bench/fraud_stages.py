"""What each stage of the fraud job's plan costs: the plan cut after each stage, sustained rates.

    .venv/bin/python -m bench.fraud_stages [--backlog 300000] [--max-offsets 25000] [--rounds 3]

One backlog (bench.streaming's events, --backlog of them in a fresh 4-partition topic), consumed
in micro-batches of --max-offsets by each variant in turn, in alternating rounds after one warm-up
round (a fresh JVM's first queries run at half speed):
- passthrough: Kafka to Kafka, key and value unchanged (bench.streaming's baseline);
- parse: the fraud job's read, JSON parse, watermark and column selection, to Spark's noop sink;
- pack: the same plus the `pack_buckets` stage (mapInArrow, a Python worker per core);
- floor: the fraud job's plan whole (`fraud_job.alert_stream` with a processor that judges nothing:
  transformWithStateInPandas in event time, foreachBatch collecting the output in the driver);
- floor-applyInPandasWithState: the same with Spark's older stateful Python operator (state shipped
  with the data, no state server; no state kept) in place of transformWithStateInPandas;
- fraud: the fraud job itself (bench.streaming's sustained figure, alerts to a Kafka topic).
Rate = rows / time of every micro-batch after the first. Printed: each variant's median rate over
the rounds and its ratio to the passthrough of the same round (median). The floor's ratio is the
most any rule engine on this stateful stage could reach on this machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
import uuid

from bench.streaming import (
    AVERAGE,
    CUSTOMERS,
    Events,
    preload,
    start_collecting,
    start_floor,
    start_passthrough,
    sustained_rate,
)
from darooghe.config import load_settings
from darooghe.fraud.profiles import write_profiles_file
from darooghe.kafka_io import admin_client, ensure_topics
from darooghe.topics import Topic

VARIANTS = ("passthrough", "parse", "pack", "floor", "floor-applyInPandasWithState", "fraud")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=300_000)
    parser.add_argument("--max-offsets", type=int, default=25_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()

    from pyspark.sql.streaming.state import GroupStateTimeout

    from darooghe.spark import spark_session
    from darooghe.streaming.fraud_job import (
        FraudJobConfig,
        packed_inputs,
        processor_inputs,
        start_fraud_query,
        stop_between_batches,
    )
    from darooghe.streaming.fraud_processor import OUTPUT_SCHEMA
    from darooghe.streaming.sources import SourceConfig

    tag = uuid.uuid4().hex[:8]
    backlog, copy, alerts, late, decisions = (
        f"bench.fraud_stages.{k}.{tag}" for k in ("backlog", "copy", "alerts", "late", "decisions")
    )
    hour = {"retention.ms": "3600000"}
    topics = [Topic(t, 4, "bench", hour) for t in (backlog, copy)]
    topics += [Topic(t, 2, "bench", hour) for t in (alerts, late, decisions)]
    try:
        ensure_topics(topics, settings)
    except Exception as exc:  # noqa: BLE001
        print(f"bench.fraud_stages: Kafka at {settings.kafka_bootstrap} is not reachable ({exc})")
        return 2
    work = settings.checkpoints_dir / "bench" / f"stages-{tag}"
    write_profiles_file({f"cust_{i}": AVERAGE for i in range(CUSTOMERS)}, work / "profiles.jsonl")
    source = SourceConfig("kafka", topic=backlog, max_offsets_per_trigger=args.max_offsets)
    t0 = time.monotonic()
    preload(settings, backlog, args.backlog, 1000, Events(seed=3))
    print(
        f"backlog: {args.backlog:,} events preloaded in {time.monotonic() - t0:.1f} s", flush=True
    )
    spark = spark_session("darooghe-bench-fraud-stages", settings)

    def config(name: str) -> FraudJobConfig:
        return FraudJobConfig(
            source=source,
            workdir=work / name,
            alerts_topic=alerts,
            late_topic=late,
            decisions_topic=decisions,
            profiles=work / "profiles.jsonl",
            trigger_seconds=0,
            progress_file=work / f"{name}.json",
        )

    def to_noop(df, name: str):
        return (
            df.writeStream.format("noop")
            .queryName(f"bench_{name}")
            .option("checkpointLocation", str(work / name))
            .trigger(processingTime="0 seconds")
            .start()
        )

    def start(name: str):
        if name == "passthrough":
            return start_passthrough(
                spark, settings, backlog, copy, work / name, 0, args.max_offsets
            )
        if name == "floor":
            return start_floor(spark, settings, config(name))
        if name == "fraud":
            return start_fraud_query(spark, config(name), settings, log=lambda m: None)
        if name == "parse":
            return to_noop(processor_inputs(spark, config(name), settings), name)
        packed = packed_inputs(spark, config(name), settings)
        if name == "pack":
            return to_noop(packed, name)

        def consume(key, frames, state):
            for _ in frames:
                pass
            return iter(())

        out = packed.groupBy("bucket").applyInPandasWithState(
            consume, OUTPUT_SCHEMA, "unused long", "append", GroupStateTimeout.NoTimeout
        )
        return start_collecting(out, "bench_floor_apiws", work / name)

    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for round_ in range(args.rounds + 1):
            label = "warm-up" if round_ == 0 else f"round {round_}"
            measured = {}
            for name in VARIANTS:
                started = start(name)
                query = getattr(started, "query", started)  # the fraud job: a FraudRun
                result = sustained_rate(query, args.backlog)
                stop_between_batches(query)
                if started is not query:
                    started.close()
                shutil.rmtree(work / name, ignore_errors=True)
                measured[name] = result["rate"]
                print(
                    f"{label:>8} {name:<30} {result['rate']:>10,.0f} events/s, median batch "
                    f"{result['batch_ms_p50']} ms, {result['rows_per_cpu_s']:,.0f} per CPU-second",
                    flush=True,
                )
            if round_:
                for name, rate in measured.items():
                    rates[name].append(rate)
                    ratios[name].append(rate / measured["passthrough"])
    finally:
        spark.stop()
        admin = admin_client(settings)
        for future in admin.delete_topics([t.name for t in topics]).values():
            future.result(30)
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'variant':<30} {'events/s (median)':>18} {'/ passthrough (median)':>23}  per round")
    for name in VARIANTS:
        each = ", ".join(f"{r:.2f}" for r in ratios[name])
        print(
            f"{name:<30} {statistics.median(rates[name]):>18,.0f} "
            f"{statistics.median(ratios[name]):>23.2f}  {each}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
