"""`darooghe topics dump | replay`: byte-for-byte round trip and clear refusals."""

from __future__ import annotations

import pytest

from darooghe.cli import main
from darooghe.records import Record, write_record_file

pytestmark = pytest.mark.integration


def test_dump_replay_dump_is_byte_identical(stack, unique_topic, tmp_path):
    source, target = unique_topic("dump-src", 3), unique_topic("dump-dst", 3)
    records = [
        Record(
            f"cust_{i % 5}",
            f'{{"n":{i},"t":"ü"}}',
            1_700_000_000_000 + i,
            {"darooghe-label": "X"} if i % 4 == 0 else {},
        )
        for i in range(300)
    ]
    write_record_file(records, tmp_path / "in.jsonl")
    assert (
        main(["topics", "replay", source, "--input", str(tmp_path / "in.jsonl"), "--any-partition"])
        == 0
    )
    assert main(["topics", "dump", source, "--output", str(tmp_path / "a.jsonl")]) == 0
    assert main(["topics", "replay", target, "--input", str(tmp_path / "a.jsonl")]) == 0
    assert main(["topics", "dump", target, "--output", str(tmp_path / "b.jsonl")]) == 0
    a, b = (tmp_path / "a.jsonl").read_bytes(), (tmp_path / "b.jsonl").read_bytes()
    assert a == b
    assert len(a.splitlines()) == 300


def test_dump_max(stack, unique_topic, tmp_path):
    topic = unique_topic("dump-max")
    write_record_file([Record(None, str(i), i) for i in range(20)], tmp_path / "in.jsonl")
    assert main(["topics", "replay", topic, "--input", str(tmp_path / "in.jsonl")]) == 0
    assert (
        main(["topics", "dump", topic, "--output", str(tmp_path / "out.jsonl"), "--max", "5"]) == 0
    )
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 5


def test_malformed_record_file_is_refused_with_line_number(stack, unique_topic, tmp_path, capsys):
    topic = unique_topic("bad-file")
    path = tmp_path / "bad.jsonl"
    path.write_text('{"value": "ok", "timestamp": 1}\n{"value": "x", "timestamp": "later"}\n')
    assert main(["topics", "replay", topic, "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "'timestamp' must be epoch milliseconds" in err
    # nothing half-replayed
    assert main(["topics", "dump", topic, "--output", str(tmp_path / "o.jsonl")]) == 0
    assert (tmp_path / "o.jsonl").read_text() == ""


def test_unknown_topic_is_named(stack, tmp_path, capsys):
    assert main(["topics", "dump", "no.such.topic", "--output", str(tmp_path / "x.jsonl")]) == 2
    assert "unknown topic 'no.such.topic'" in capsys.readouterr().err


def test_group_lag_counts_records_not_transaction_markers(stack, unique_topic):
    """A transactional write ends in a control record no group commits past: high - committed
    stays at 1 per partition after the group read everything. The demo waited on that for good."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from darooghe import kafka_io

    topic = unique_topic("lag", partitions=2)
    producer = Producer(kafka_io.producer_config(stack, **{"transactional.id": f"lag-{topic}"}))
    producer.init_transactions()
    producer.begin_transaction()
    for i in range(6):
        producer.produce(topic, value=b"v%d" % i, partition=i % 2)
    producer.commit_transaction()
    group = f"g-{topic}"
    assert kafka_io.group_lag(topic, group, stack) == {0: 3, 1: 3}
    assert kafka_io.count_records(topic, stack) == 6

    # the group reads and commits the next record offset, as the validator does
    consumer = Consumer(kafka_io.consumer_config(group, stack))
    consumer.commit(
        offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 2)], asynchronous=False
    )
    consumer.close()
    ends = kafka_io.partition_end_offsets(topic, stack, group_id=group)
    assert {p: high - c for p, (_, high, c) in ends.items()} == {0: 1, 1: 2}  # the markers
    assert kafka_io.group_lag(topic, group, stack) == {0: 0, 1: 1}
