"""Generator throughput, history mode: to a record file and to Kafka, each beside its raw baseline.

    .venv/bin/python -m bench.generator [--days 7] [--event-rate 100] [--kafka-days 3] [--no-kafka]

- file: `darooghe generate --mode history --sink file` as the code runs it (engine, rendering,
  writing), against writing the same pre-serialised lines to a file (join + write);
- Kafka: the generator's Kafka publisher into a fresh topic, against a raw confluent-kafka produce loop
  of the same pre-serialised keys, values, timestamps and headers with the same producer settings,
  into another fresh topic. Both topics are deleted afterwards.

The broker is the one of the settings (DAROOGHE_KAFKA_* / the dev stack on 127.0.0.1:9092). The
ratios (generator / raw) are the figures to improve; the targets are 100,000 events/s to a file
and 50,000 events/s to Kafka.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from confluent_kafka import Producer

from darooghe import kafka_io
from darooghe.config import load_settings
from darooghe.generator import Engine, GeneratorParams, Renderer, run_history
from darooghe.generator.publishers import FilePublisher, KafkaPublisher
from darooghe.topics import LABEL_HEADER, Topic

END_MS = 1_774_224_000_000  # 2026-03-23T00:00:00Z: a fixed window, so every run times the same events
DAY_MS = 86_400_000
FILE_TARGET, KAFKA_TARGET = 100_000, 50_000


def _engine(args, days: int) -> tuple[Engine, Renderer, int, int]:
    params = GeneratorParams(event_rate=args.event_rate, seed=args.seed, days=days)
    engine = Engine(params)
    return engine, Renderer(engine.population, LABEL_HEADER), END_MS - days * DAY_MS, END_MS


def _batches(args, days: int):
    engine, renderer, start, end = _engine(args, days)
    from darooghe.generator.runner import history_chunk_ms

    step = history_chunk_ms(engine)
    return renderer, [engine.chunk(s, min(s + step, end)) for s in range(start, end, step)]


def bench_file(args, tmp: Path) -> dict:
    # the generator, end to end
    engine, renderer, start, end = _engine(args, args.days)
    path = tmp / "generated.jsonl"
    t0 = time.perf_counter()
    publisher = FilePublisher(path, renderer)
    summary = run_history(engine, publisher, start, end)
    publisher.close()
    generated = time.perf_counter() - t0
    n = summary.events

    # stages: drawing and labelling only, then rendering
    renderer, batches = _batches(args, args.days)
    t0 = time.perf_counter()
    lines = [renderer.record_lines(b, b.t_ms) for b in batches]
    rendering = time.perf_counter() - t0

    # raw: the same pre-serialised lines written out
    raw_path = tmp / "raw.jsonl"
    t0 = time.perf_counter()
    with raw_path.open("w", encoding="utf-8", buffering=4 << 20) as fh:
        for block in lines:
            fh.write("\n".join(block))
            fh.write("\n")
    raw = time.perf_counter() - t0
    assert raw_path.stat().st_size == path.stat().st_size
    return {"events": n, "generator": n / generated, "raw": n / raw, "render_only": n / rendering,
            "bytes": path.stat().st_size}


def bench_kafka(args, settings) -> dict:
    names = [f"darooghe.bench.generator.{uuid.uuid4().hex[:8]}" for _ in range(2)]
    kafka_io.ensure_topics([Topic(n, 4, "generator benchmark") for n in names], settings)
    try:
        engine, renderer, start, end = _engine(args, args.kafka_days)

        def make_producer(**overrides):
            return Producer(kafka_io.producer_config(settings, **overrides))

        t0 = time.perf_counter()
        publisher = KafkaPublisher(names[0], renderer, make_producer, LABEL_HEADER)
        summary = run_history(engine, publisher, start, end)
        generated = time.perf_counter() - t0
        n = summary.events

        # raw: pre-serialised payloads, same producer settings, a plain produce loop
        renderer, batches = _batches(args, args.kafka_days)
        payloads = []
        for b in batches:
            labels = b.labels()
            payloads += zip(
                [v.encode() for v in renderer.values(b)],
                [k.encode() for k in renderer.population.customer_ids[b.customer].tolist()],
                b.t_ms.tolist(),
                [None if lab is None else [(LABEL_HEADER, lab.encode())] for lab in labels],
            )
        errors = []
        producer = make_producer(
            **KafkaPublisher.PRODUCER_OVERRIDES, on_delivery=lambda err, msg: err and errors.append(err)
        )
        topic = names[1]
        t0 = time.perf_counter()
        for i, (value, key, ts, headers) in enumerate(payloads):
            kafka_io.produce_when_room(producer, topic, value, key, ts, headers)
            if i % 20_000 == 0:
                producer.poll(0)
        remaining = producer.flush(120)
        raw = time.perf_counter() - t0
        assert remaining == 0 and not errors, (remaining, errors[:3])
        written = [sum(h - lo for lo, h, _ in kafka_io.partition_end_offsets(t, settings).values())
                   for t in names]
        assert written == [n, len(payloads)], written
        return {"events": n, "generator": n / generated, "raw": len(payloads) / raw}
    finally:
        admin = kafka_io.admin_client(settings)
        for fut in admin.delete_topics(names, operation_timeout=30).values():
            try:
                fut.result(30)
            except Exception as exc:  # noqa: BLE001 - cleanup: report and go on
                print(f"  (could not delete a benchmark topic: {exc})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.generator", description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=7, help="history days for the file run (default 7)")
    p.add_argument("--kafka-days", type=int, default=3, help="history days for the Kafka run (default 3)")
    p.add_argument("--event-rate", type=float, default=100.0, help="EVENT_RATE (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-kafka", action="store_true", help="file benchmark only")
    args = p.parse_args(argv)
    np.seterr(all="raise")

    print(f"generator benchmark: history mode, EVENT_RATE={args.event_rate:g}, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="darooghe-bench-") as tmp:
        f = bench_file(args, Path(tmp))
    print(f"file   ({args.days} days, {f['events']:,} events, {f['bytes'] / 1e6:,.0f} MB)")
    print(f"  generator to file      {f['generator']:>12,.0f} events/s   (target {FILE_TARGET:,})")
    print(f"  render only            {f['render_only']:>12,.0f} events/s")
    print(f"  raw write of lines     {f['raw']:>12,.0f} events/s")
    print(f"  ratio generator/raw    {f['generator'] / f['raw']:>12.3f}")
    ok = f["generator"] >= FILE_TARGET
    if not args.no_kafka:
        settings = load_settings()
        k = bench_kafka(args, settings)
        print(f"kafka  ({args.kafka_days} days, {k['events']:,} events, broker {settings.kafka_bootstrap})")
        print(f"  generator to Kafka     {k['generator']:>12,.0f} events/s   (target {KAFKA_TARGET:,})")
        print(f"  raw produce loop       {k['raw']:>12,.0f} events/s")
        print(f"  ratio generator/raw    {k['generator'] / k['raw']:>12.3f}")
        ok = ok and k["generator"] >= KAFKA_TARGET
    print("targets met" if ok else "a target was missed (the machine may be busy: compare the ratios)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
