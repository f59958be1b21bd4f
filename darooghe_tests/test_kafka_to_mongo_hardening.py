"""Sinks against bad input and stuck states, on the real test broker and FerretDB: records no sink
can store go to a dead-letter topic instead of stopping it, a backlog is read in bounded chunks with
the offsets saved after each, and two runs of one sink at once never undo each other."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer

from darooghe import topics
from darooghe.kafka_io import consumer_config, producer_config, read_chunks
from darooghe.kafka_to_mongo import error_summary, live_metrics, loop
from darooghe.kafka_to_mongo.dead_letters import (
    DLQ_ERROR,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_SINK,
    DLQ_TOPIC,
    PRODUCER_CONFIG,
    DeadLetters,
)
from darooghe.kafka_to_mongo.fraud_alerts import sink_fraud_alerts
from darooghe.kafka_to_mongo.lock import SinkBusyError, sink_lease
from darooghe.schema import format_timestamp
from darooghe_tests.metric_values import T0, volume_value

pytestmark = pytest.mark.integration

VOLUME = topics.METRICS_CATEGORY_VOLUME.name


@pytest.fixture()
def consumer(stack):
    consumer = Consumer(consumer_config(None, stack, **loop.CONSUMER_CONFIG))
    yield consumer
    consumer.close()


def _produce(settings, topic: str, values: list[bytes | str | dict | None]) -> None:
    producer = Producer(producer_config(settings))
    for value in values:
        if isinstance(value, dict):
            value = json.dumps(value)
        if isinstance(value, str):
            value = value.encode()
        producer.produce(topic, key=b"k", value=value, partition=0)
    assert producer.flush(30) == 0


def _dead_letters(settings, sink: str, topic: str) -> DeadLetters:
    return DeadLetters(Producer(producer_config(settings, **PRODUCER_CONFIG)), sink, topic)


def _read_all(settings, topic: str) -> list:
    consumer = Consumer(consumer_config(None, settings))
    try:
        return [m for chunk in read_chunks(consumer, topic) for m in chunk.messages]
    finally:
        consumer.close()


def _volume(minute: int, **extra) -> dict:
    return volume_value(minute, metric_id=f"v{minute}", **extra)


def _headers(message) -> dict[str, str]:
    return {k: v.decode() for k, v in message.headers() or []}


def test_metric_records_no_sink_can_store_are_dead_lettered_and_the_sink_goes_on(
    stack, unique_topic, scratch_db, consumer
):
    """Each of these stopped the sink for good (a ValueError, FerretDB closing the connection on a
    NaN, a write error on a '$' field name) or was dropped with only a count."""
    topic, dlq = unique_topic("test.poison.volume"), unique_topic("test.poison.dlq")
    coll = "poison_" + topic.rsplit(".", 1)[1]
    poison = [
        _volume(1, window_start=10**20),  # epoch ms beyond any datetime
        (
            '{"window_start": "2026-03-23T14:02:00Z", "window_end": "2026-03-23T14:03:00Z", '
            '"merchant_category": "retail", "total_amount": NaN, "metric_id": "nan"}'
        ),
        _volume(3, **{"$where": "1"}),
        _volume(4, matrix=[[1, 2]]),  # FerretDB refuses nested arrays
        b"\xff\xfe not utf-8 and not json",
        None,  # a tombstone
    ]
    _produce(stack, topic, [_volume(0), *poison, _volume(9)])

    report = live_metrics.sink_metrics(
        scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None,
        dead_letters=_dead_letters(stack, coll, dlq),
    )  # fmt: skip
    assert (report.records_read, report.records_stored, report.dead_lettered) == (8, 2, 6)
    assert report.records_read == report.records_stored + report.dead_lettered
    assert {d["_id"] for d in scratch_db[coll].find()} == {"v0", "v9"}
    assert loop.load_offsets(scratch_db, coll, topic) == {0: 8}
    assert loop.dead_letter_count(scratch_db, coll, topic) == 6

    letters = _read_all(stack, dlq)
    assert [m.value() for m in letters] == [
        json.dumps(poison[0]).encode(), poison[1].encode(), json.dumps(poison[2]).encode(),
        json.dumps(poison[3]).encode(), poison[4], None,
    ]  # fmt: skip
    first = _headers(letters[0])
    assert (first[DLQ_SINK], first[DLQ_TOPIC], first[DLQ_PARTITION], first[DLQ_OFFSET]) == (
        coll, topic, "0", "1",
    )  # fmt: skip
    assert "not a representable time" in first[DLQ_ERROR]
    assert "nan" in _headers(letters[1])[DLQ_ERROR].lower()
    assert "'$where' cannot be stored" in _headers(letters[2])[DLQ_ERROR]
    assert "matrix.0 is an array inside an array" in _headers(letters[3])[DLQ_ERROR]
    assert all(f"offset {m.offset() + 1}" in _headers(m)[DLQ_ERROR] for m in letters)
    assert all(m.key() == b"k" for m in letters)

    again = live_metrics.sink_metrics(
        scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None,
        dead_letters=_dead_letters(stack, coll, dlq),
    )  # fmt: skip
    assert (again.records_read, again.dead_lettered, again.dead_letters_total) == (0, 0, 6)


def test_alert_and_error_records_no_sink_can_store_are_dead_lettered(
    stack, unique_topic, scratch_db, consumer
):
    alerts, errors, dlq = (
        unique_topic("test.poison.alerts"),
        unique_topic("test.poison.errors"),
        unique_topic("test.poison.dlq"),
    )
    suffix = alerts.rsplit(".", 1)[1]
    alert = {
        "alert_id": "a1",
        "rule": "VELOCITY",
        "transaction_id": "t1",
        "customer_id": "cust_1",
        "event_time": "2026-03-23T14:00:00.000Z",
        "detected_at": "2026-03-23T14:00:05.000Z",
        "evidence": {"count": 6},
        "severity": "high",
    }
    # An unhashable rule raised TypeError out of the sink.
    _produce(stack, alerts, [alert, {**alert, "alert_id": "a2", "rule": ["VELOCITY"]}])
    report = sink_fraud_alerts(
        scratch_db, consumer, alerts, f"alerts_{suffix}", log=lambda _: None,
        dead_letters=_dead_letters(stack, f"alerts_{suffix}", dlq),
    )  # fmt: skip
    assert (report.records_read, report.records_stored, report.dead_lettered) == (2, 1, 1)

    # (Recent times: the summary keeps the topic's retention back from its newest hour.)
    now = format_timestamp(datetime.now(UTC))
    good = {"error_codes": ["ERR_AMOUNT"], "source": {"timestamp": now}}
    # A source time out of range raised OverflowError out of the summary; it now counts at the
    # error record's own arrival hour. A record without codes is dead-lettered, not just counted.
    _produce(stack, errors, [good, {**good, "source": {"timestamp": 10**20}}, {"error_codes": 5}])
    summary = error_summary.sink_error_summary(
        scratch_db, consumer, errors, f"errors_{suffix}", log=lambda _: None,
        dead_letters=_dead_letters(stack, f"errors_{suffix}", dlq),
    )  # fmt: skip
    assert (summary.records_read, summary.records_stored, summary.dead_lettered) == (3, 2, 1)
    assert sum(d["count"] for d in scratch_db[f"errors_{suffix}"].find()) == 2

    sources = [_headers(m)[DLQ_TOPIC] for m in _read_all(stack, dlq)]
    assert sources == [alerts, errors]


def test_a_backlog_is_written_chunk_by_chunk_and_a_crash_resumes_after_the_last_chunk(
    stack, unique_topic, scratch_db, consumer, monkeypatch
):
    topic = unique_topic("test.chunks.volume")
    coll = "chunks_" + topic.rsplit(".", 1)[1]
    _produce(stack, topic, [_volume(m) for m in range(2500)])
    writes: list[int] = []
    real_write = live_metrics.write_replacements

    def crash_on_third_chunk(db, collection, documents):
        writes.append(len(documents))
        if len(writes) == 3:
            raise ConnectionError("the database went away mid-backlog")
        return real_write(db, collection, documents)

    monkeypatch.setattr(live_metrics, "write_replacements", crash_on_third_chunk)
    with pytest.raises(ConnectionError):
        live_metrics.sink_metrics(
            scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None, chunk_records=1000
        )
    assert writes == [1000, 1000, 500]  # never more than a chunk at once
    assert loop.load_offsets(scratch_db, coll, topic) == {0: 2000}
    assert scratch_db[coll].count_documents({}) == 2000

    monkeypatch.setattr(live_metrics, "write_replacements", real_write)
    resumed = live_metrics.sink_metrics(
        scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None, chunk_records=1000
    )
    assert (resumed.records_read, resumed.chunks, resumed.collection_count) == (500, 1, 2500)


def test_concurrent_error_summary_runs_never_delete_each_others_documents(
    stack, unique_topic, scratch_db
):
    topic = unique_topic("test.concurrent.errors", 2)
    coll = "concurrent_" + topic.rsplit(".", 1)[1]
    values = [
        {"error_codes": [code], "source": {"timestamp": format_timestamp(T0 + timedelta(hours=h))}}
        for h in range(6)
        for code in ("ERR_AMOUNT", "ERR_TIME", "ERR_DEVICE")
    ]
    _produce(stack, topic, values)
    expected = {f"{v['error_codes'][0]}|{v['source']['timestamp']}": 1 for v in values}
    # Both runs meet here, so that (without one writer at a time) they read, write and clean up
    # side by side; a run that cannot meet the other in time goes on alone.
    meet = threading.Barrier(2, timeout=5)

    def log(_message: str) -> None:
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            pass

    failures: list[BaseException] = []

    def run() -> None:
        consumer = Consumer(consumer_config(None, stack))
        try:
            error_summary.sink_error_summary(scratch_db, consumer, topic, coll, log=log)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            consumer.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    assert {d["_id"]: d["count"] for d in scratch_db[coll].find()} == expected


def test_a_sink_waits_for_the_run_holding_it_then_gives_up_naming_the_holder(stack, scratch_db):
    with sink_lease(scratch_db, "test|busy") as held:
        with (
            pytest.raises(SinkBusyError, match=held.owner),
            sink_lease(scratch_db, "test|busy", wait_seconds=1),
        ):
            pass
        held.renew()
    with sink_lease(scratch_db, "test|busy", wait_seconds=1):  # released: free again
        pass
    # A holder that died leaves a lease that expires.
    with (
        sink_lease(scratch_db, "test|dead", lease_seconds=0.2),
        sink_lease(scratch_db, "test|dead", wait_seconds=5),
    ):
        pass
