"""Validator throughput, Kafka to Kafka, beside a raw consume-then-produce loop on the same broker.

    .venv/bin/python -m bench.validator [--records 200000] [--rounds 3] [--batch-size 20000]

Pre-loads a fresh 4-partition input topic with a realistic mix (10% invalid records of every
kind), then, in alternating rounds on that same input:
- raw: consume(N) and produce each value unchanged to an output topic, no validation, no
  transactions (an idempotent producer, the project's default configuration);
- raw-txn: the same loop with one Kafka transaction per batch (what exactly-once costs);
- validator: the real service (darooghe.validation.service.Validator), exactly once.
Each run uses its own consumer group; its rate is records / (last commit or flush - first record).
Targets: validator >= 30,000 events/s and >= 0.5 x the raw loop.
The bench topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

from darooghe.config import load_settings
from darooghe.kafka_io import (
    admin_client,
    consumer_config,
    ensure_topics,
    produce_when_room,
    producer_config,
    round_trip,
)
from darooghe.topics import Topic
from darooghe.validation.progress import progress_path
from darooghe.validation.samples import samples
from darooghe.validation.service import Validator, ValidatorOptions

TARGET_RATE = 30_000
TARGET_RATIO = 0.5


def preload(settings, topic: str, n: int) -> tuple[float, int]:
    now_ms = int(time.time() * 1000)
    records = samples(n, now_ms - n, invalid_share=0.1, seed=7, spacing_ms=1)
    producer = Producer(producer_config(settings))
    failed: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))

    t0 = time.monotonic()
    for s in records:
        produce_when_room(producer, topic, s.value, s.key, s.timestamp, on_delivery=on_delivery)
    if producer.flush(120) or failed:
        raise SystemExit(f"pre-load of {topic} failed: {len(failed)} errors, first {failed[:1]}")
    return n / (time.monotonic() - t0), sum(1 for s in records if s.expected_codes)


def raw_loop(
    settings, source: str, sink: str, n: int, batch_size: int, transactional: bool
) -> float:
    group = f"bench-raw-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(consumer_config(group, settings, **{"enable.partition.eof": False}))
    conf = producer_config(settings, **{"linger.ms": 5})
    if transactional:
        conf["transactional.id"] = group
    producer = Producer(conf)
    if transactional:
        producer.init_transactions(60)
    consumer.subscribe([source])
    done, first = 0, None
    try:
        while done < n:
            msgs = consumer.consume(batch_size, 1.0)
            if not msgs:
                continue
            if first is None:
                first = time.monotonic()
            if transactional:
                producer.begin_transaction()
            offsets = {}
            for m in msgs:
                if m.error():
                    continue
                produce_when_room(
                    producer, sink, m.value(), m.key(), m.timestamp()[1], m.headers()
                )
                offsets[m.partition()] = m.offset() + 1
                done += 1
            if transactional:
                producer.send_offsets_to_transaction(
                    [TopicPartition(source, p, o) for p, o in offsets.items()],
                    consumer.consumer_group_metadata(),
                    60,
                )
                producer.commit_transaction(60)
            else:
                producer.poll(0)
        producer.flush(60)
        return n / (time.monotonic() - first)
    finally:
        consumer.close()


def validator_run(
    settings, source: str, valid: str, errors: str, n: int, batch_size: int, group_id: str = ""
) -> tuple[float, object]:
    """One exactly-once validator run over the n records of `source` with a fresh consumer group
    (`group_id`, default a random bench-validator-*); its records/s from first record to last commit."""
    options = ValidatorOptions(
        input_topic=source,
        valid_topic=valid,
        error_topic=errors,
        group_id=group_id or f"bench-validator-{uuid.uuid4().hex[:8]}",
        batch_size=batch_size,
        progress_interval=60,
        stop_when_idle=1.5,
    )
    v = Validator(options, settings, log=lambda line: None)
    try:
        counts = v.run()
    finally:
        progress_path(settings, options.group_id, options.instance).unlink(missing_ok=True)
    if counts.records_in != n:
        raise SystemExit(f"validator read {counts.records_in} records, expected {n}")
    return n / (v.last_commit_at - v.first_record_at), counts


def require_broker(settings) -> None:
    """Exit with a clear message unless the settings' broker answers a produce/consume round trip."""
    try:
        round_trip(settings)
    except Exception as exc:
        raise SystemExit(
            f"no Kafka broker at {settings.kafka_bootstrap} ({exc}); run `darooghe services up`"
        ) from exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args()

    settings = load_settings()
    require_broker(settings)
    tag = uuid.uuid4().hex[:8]
    names = {k: f"bench.validator.{k}.{tag}" for k in ("input", "raw", "rawtxn", "valid", "errors")}
    ensure_topics(
        [
            Topic(names["input"], 4, "bench input"),
            Topic(names["raw"], 4, "bench raw"),
            Topic(names["rawtxn"], 4, "bench raw txn"),
            Topic(names["valid"], 4, "bench valid"),
            Topic(names["errors"], 2, "bench errors"),
        ],
        settings,
    )
    try:
        rate, invalid = preload(settings, names["input"], args.records)
        print(
            f"broker {settings.kafka_bootstrap}: pre-loaded {args.records:,} records "
            f"({invalid:,} invalid) at {rate:,.0f}/s; batches of {args.batch_size}",
            flush=True,
        )
        results: dict[str, list[float]] = {"raw": [], "raw-txn": [], "validator": []}
        for r in range(1, args.rounds + 1):
            results["raw"].append(
                raw_loop(
                    settings, names["input"], names["raw"], args.records, args.batch_size, False
                )
            )
            results["raw-txn"].append(
                raw_loop(
                    settings, names["input"], names["rawtxn"], args.records, args.batch_size, True
                )
            )
            rate, counts = validator_run(
                settings,
                names["input"],
                names["valid"],
                names["errors"],
                args.records,
                args.batch_size,
            )
            results["validator"].append(rate)
            print(
                f"round {r}: raw {results['raw'][-1]:,.0f}/s, raw-txn {results['raw-txn'][-1]:,.0f}/s, "
                f"validator {rate:,.0f}/s  [{counts.summary()}]",
                flush=True,
            )
        med = {k: statistics.median(v) for k, v in results.items()}
        ratio, ratio_txn = med["validator"] / med["raw"], med["validator"] / med["raw-txn"]
        print(
            f"median events/s: raw {med['raw']:,.0f}  raw-txn {med['raw-txn']:,.0f}  "
            f"validator {med['validator']:,.0f}"
        )
        print(
            f"ratio validator/raw {ratio:.2f} (target >= {TARGET_RATIO}), "
            f"validator/raw-txn {ratio_txn:.2f}; validator {med['validator']:,.0f}/s "
            f"(target >= {TARGET_RATE:,})"
        )
        ok = med["validator"] >= TARGET_RATE and ratio >= TARGET_RATIO
        print("targets met" if ok else "TARGETS NOT MET")
        return 0
    finally:
        admin = admin_client(settings)  # referenced until the deletions are done
        for future in admin.delete_topics(list(names.values()), operation_timeout=30).values():
            future.result()


if __name__ == "__main__":
    raise SystemExit(main())
