"""The history lake: Kafka -> Parquet by event date, incremental and exactly once, read_committed."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from darooghe.batch.lake import has_data, ingest, lake_checkpoint_dir, lake_stats, read_lake
from darooghe.kafka_io import produce_records, producer_config
from darooghe.records import Record
from darooghe.schema import epoch_ms
from darooghe_tests.batch_data import txn, value_json

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def _record(t: dict) -> Record:
    return Record(t["customer_id"], value_json(t), epoch_ms(t["event_time"]))


def _transactional(stack, topic: str, records: list[Record], commit: bool) -> None:
    producer = Producer(
        producer_config(stack, **{"transactional.id": f"lake-test-{uuid.uuid4().hex[:8]}"})
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    for r in records:
        producer.produce(topic, key=r.key.encode(), value=r.value.encode(), timestamp=r.timestamp)
    producer.flush(30)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


def test_lake_ingests_each_committed_record_once(spark, stack, unique_topic, tmp_path):
    topic = unique_topic("lake", 2)
    lake_dir, checkpoint = tmp_path / "lake", lake_checkpoint_dir(tmp_path / "checkpoints")
    first = [
        txn(f"2026-03-2{d}T1{h}:00:00", customer=f"cust_{h}", amount=1000 * (h + 1))
        for d in (2, 3)
        for h in range(3)
    ]
    produce_records(topic, [_record(t) for t in first], stack)
    produce_records(
        topic, [Record("cust_x", "not a transaction", epoch_ms(first[0]["event_time"]))], stack
    )
    assert read_lake(spark, lake_dir).count() == 0 and not has_data(lake_dir)

    # a cap of 3 records per micro-batch splits the 7 into several batches; the run counts them all
    run1 = ingest(
        spark, stack.kafka_bootstrap, topic, lake_dir, checkpoint, max_offsets_per_trigger=3,
        log=lambda m: None,
    )
    assert (run1.records_read, run1.rows_written, run1.rows_rejected) == (7, 6, 1)
    assert sorted(p.name for p in lake_dir.glob("event_date=*")) == [
        "event_date=2026-03-22",
        "event_date=2026-03-23",
    ]
    lake = read_lake(spark, lake_dir)
    assert sorted(r.transaction_id for r in lake.collect()) == sorted(
        t["transaction_id"] for t in first
    )

    run2 = ingest(spark, stack.kafka_bootstrap, topic, lake_dir, checkpoint, log=lambda m: None)
    assert (run2.records_read, run2.rows_written) == (0, 0)
    assert read_lake(spark, lake_dir).count() == 6

    committed = [
        txn("2026-03-24T08:00:00", customer="cust_7"),
        txn("2026-03-24T09:00:00", customer="cust_8"),
    ]
    aborted = [txn("2026-03-24T10:00:00", customer="cust_9")]
    _transactional(stack, topic, [_record(t) for t in aborted], commit=False)
    _transactional(stack, topic, [_record(t) for t in committed], commit=True)
    run3 = ingest(spark, stack.kafka_bootstrap, topic, lake_dir, checkpoint, log=lambda m: None)
    assert run3.rows_written == 2
    lake = read_lake(spark, lake_dir)
    ids = [r.transaction_id for r in lake.collect()]
    assert len(ids) == len(set(ids)) == 8
    assert aborted[0]["transaction_id"] not in ids
    row = lake.where(lake.transaction_id == first[0]["transaction_id"]).first()
    assert (row.amount, row.location.lat, row.device_info.os, row.event_date) == (
        1000,
        35.6892,
        None,
        "2026-03-22",
    )
    assert row.timestamp == first[0]["timestamp"]
    coords = lake.select("kafka_partition", "kafka_offset").distinct().count()
    assert coords == 8
    stats = lake_stats(lake)
    assert (stats.rows, stats.days, stats.customers) == (8, 3, 5)
    assert stats.first_event == "2026-03-22T10:00:00.000Z"


def test_records_deleted_before_the_lake_read_them_are_counted_not_lost_silently(
    spark, stack, unique_topic, tmp_path
):
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    topic = unique_topic("lake.loss", 1)
    lake_dir, checkpoint = tmp_path / "lake", lake_checkpoint_dir(tmp_path / "checkpoints")
    batch = [txn(f"2026-03-22T10:{m:02d}:00", customer=f"cust_{m}") for m in range(10)]
    produce_records(topic, [_record(t) for t in batch[:4]], stack)
    run1 = ingest(spark, stack.kafka_bootstrap, topic, lake_dir, checkpoint, log=lambda m: None)
    assert run1.rows_written == 4 and run1.offsets_lost == {}

    produce_records(topic, [_record(t) for t in batch[4:]], stack)  # offsets 4..9
    # Retention (here: a deletion up to offset 7) removes three records the lake never read.
    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(topic, 0, 7)]).values():
        future.result(30)
    messages: list[str] = []
    run2 = ingest(spark, stack.kafka_bootstrap, topic, lake_dir, checkpoint, log=messages.append)
    assert run2.rows_written == 3  # offsets 7..9
    assert run2.offsets_lost == {0: 3} and run2.as_metadata()["offsets_lost"] == 3
    assert any("3 offset(s) of " in m and "deleted before the lake read them" in m for m in messages)
    assert read_lake(spark, lake_dir).count() == 7
