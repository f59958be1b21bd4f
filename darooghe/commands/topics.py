"""`darooghe topics dump | replay | list`: move records between Kafka and record files."""

from __future__ import annotations

import sys
import time

from confluent_kafka import KafkaException

from darooghe import kafka_io
from darooghe.records import RecordFileError, read_records, write_record_file


def register(sub) -> None:
    p = sub.add_parser("topics", help="dump a topic to a record file, replay a file into a topic")
    tsub = p.add_subparsers(dest="topics_action", required=True, metavar="ACTION")

    d = tsub.add_parser("dump", help="write a topic's records (read_committed) to a JSONL file")
    d.add_argument("topic")
    d.add_argument("--output", "-o", required=True, help="record file to write")
    d.add_argument("--max", type=int, default=None, help="stop after N records")
    d.set_defaults(func=dump)

    r = tsub.add_parser("replay", help="produce a record file's records into a topic")
    r.add_argument("topic")
    r.add_argument("--input", "-i", required=True, help="record file to read")
    r.add_argument(
        "--any-partition",
        action="store_true",
        help="let the partitioner choose instead of keeping each record's dumped partition",
    )
    r.set_defaults(func=replay)

    ls = tsub.add_parser("list", help="topics with partitions and end offsets")
    ls.set_defaults(func=list_topics)

    cr = tsub.add_parser("create", help="create the project's topics (idempotent; `services up` does it too)")
    cr.set_defaults(func=create)


def dump(args) -> int:
    t0 = time.monotonic()
    try:
        # Partitions arrive interleaved in fetch order; sort so the same topic always dumps the same bytes.
        records = sorted(
            kafka_io.consume_all(args.topic, max_records=args.max), key=lambda r: (r.partition, r.offset)
        )
        n = write_record_file(records, args.output)
    except (kafka_io.UnknownTopicError, KafkaException) as exc:
        print(f"darooghe topics dump: {exc}", file=sys.stderr)
        return 2
    print(f"dumped {n} records from {args.topic} to {args.output} in {time.monotonic() - t0:.1f} s")
    return 0


def replay(args) -> int:
    t0 = time.monotonic()

    def progress(n: int) -> None:
        print(f"  {n} records replayed ({n / (time.monotonic() - t0):.0f}/s)", flush=True)

    try:
        # Validate the whole file before producing anything: a bad line must not leave half a replay.
        records = list(read_records(args.input))
        n = kafka_io.produce_records(
            args.topic, records, keep_partitions=not args.any_partition, progress=progress
        )
    except (RecordFileError, kafka_io.UnknownTopicError, KafkaException) as exc:
        print(f"darooghe topics replay: {exc}", file=sys.stderr)
        return 2
    print(f"replayed {n} records from {args.input} into {args.topic} in {time.monotonic() - t0:.1f} s")
    return 0


def list_topics(args) -> int:
    admin = kafka_io.admin_client()
    for name, parts in sorted(kafka_io.existing_topics(admin).items()):
        if name.startswith("__"):
            continue
        ends = kafka_io.partition_end_offsets(name)
        total = sum(high - low for low, high, _ in ends.values())
        print(f"{name:<40} partitions={parts:<3} records={total}")
    return 0


def create(args) -> int:
    for name, result in kafka_io.ensure_topics().items():
        print(f"{name}: {result}")
    return 0
