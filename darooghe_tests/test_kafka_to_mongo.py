"""Kafka -> MongoDB sinks: record parsing and ranking (unit), and the sinks on the real test broker
and FerretDB (integration): idempotent re-runs, offsets, rankings, transactional topics."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, Producer

from darooghe import topics
from darooghe.kafka_io import consumer_config, producer_config
from darooghe.kafka_to_mongo import error_summary, live_metrics, loop
from darooghe.records import Record
from darooghe.schema import EPOCH, format_timestamp
from darooghe.streaming import metric_contract
from darooghe_tests.metric_values import T0, volume_value

VOLUME = topics.METRICS_CATEGORY_VOLUME.name
TOP = topics.METRICS_TOP_MERCHANTS.name


def _record(value: dict | str, offset: int = 0, timestamp: int = 0) -> Record:
    text = value if isinstance(value, str) else json.dumps(value)
    return Record(key=None, value=text, timestamp=timestamp, partition=0, offset=offset)


def _volume(minute: int, category: str, count: int, metric_id: str | None = None) -> dict:
    return volume_value(minute, category, count, metric_id)


def _top(window: int, merchant: str, commission: int, rank: int) -> dict:
    start = T0 + timedelta(minutes=5 * window)
    return {
        "window_start": format_timestamp(start),
        "window_end": format_timestamp(start + timedelta(minutes=5)),
        "rank": rank,
        "merchant_id": merchant,
        "total_commission": commission,
        "transaction_count": commission // 100,
        "metric_id": f"top|{window}|{rank}",
    }


# --- unit -----------------------------------------------------------------------------------------
def test_parse_time_accepts_iso_and_epoch_ms_and_names_bad_input():
    assert loop.parse_time("2026-03-23T14:35:22.145Z", "x") == datetime(
        2026, 3, 23, 14, 35, 22, 145000, UTC
    )
    assert loop.parse_time(1774276522145, "x") == datetime(2026, 3, 23, 14, 35, 22, 145000, UTC)
    assert loop.parse_time("2026-03-23T18:05:22+03:30", "x") == datetime(
        2026, 3, 23, 14, 35, 22, tzinfo=UTC
    )
    with pytest.raises(
        loop.SinkRecordError, match=r"window_start: 'soon' is not an ISO-8601 time"
    ):
        loop.parse_time("soon", "window_start")
    with pytest.raises(loop.SinkRecordError, match="got True"):
        loop.parse_time(True, "window_start")


def test_metric_document_keeps_fields_converts_windows_and_uses_metric_id():
    doc = live_metrics.metric_document(VOLUME, _record(_volume(0, "retail", 7, "abc"), offset=42))
    assert doc["_id"] == "abc"
    assert doc["window_start"] == T0 and doc["window_end"] == T0 + timedelta(minutes=1)
    assert doc["transaction_count"] == 7
    assert doc["source"] == {"topic": VOLUME, "partition": 0, "offset": 42}


def test_metric_document_derives_a_deterministic_id_when_metric_id_is_missing():
    a = live_metrics.metric_document(VOLUME, _record(_volume(0, "retail", 7)))
    b = live_metrics.metric_document(VOLUME, _record(_volume(0, "retail", 9), offset=5))
    c = live_metrics.metric_document(VOLUME, _record(_volume(0, "government", 7)))
    assert a["_id"] == b["_id"] != c["_id"]


def test_derived_metric_id_is_the_one_the_streaming_job_sends():
    doc = live_metrics.metric_document(VOLUME, _record(_volume(0, "retail", 7)))
    start_ms = (T0 - EPOCH) // timedelta(milliseconds=1)
    assert doc["_id"] == metric_contract.metric_id(VOLUME, start_ms, "retail")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "value is not JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        (
            {"window_end": "2026-03-23T14:00:00.000Z", "merchant_category": "retail"},
            "missing field 'window_start'",
        ),
        (
            {"window_start": "2026-03-23T14:00:00.000Z", "window_end": "2026-03-23T14:01:00.000Z"},
            "missing field 'merchant_category'",
        ),
    ],
)
def test_metric_document_refuses_bad_records_naming_where(value, message):
    with pytest.raises(loop.SinkRecordError, match=message) as err:
        live_metrics.metric_document(VOLUME, _record(value, offset=3))
    assert f"{VOLUME} partition 0 offset 3" in str(err.value)


def test_rank_top_merchants_merges_stored_and_new_values_latest_per_merchant_wins():
    def doc(merchant, commission):
        return live_metrics.metric_document(TOP, _record(_top(0, merchant, commission, 1)))

    stored = [doc(f"m{i}", 1000 - 100 * i) for i in range(5)]  # m0..m4, 1000..600
    update = [doc("m9", 950), doc("m4", 1200), doc("m3", 650)]  # newcomer, riser, small change
    ranking = live_metrics.rank_top_merchants(stored + update)
    assert [(d["rank"], d["merchant_id"], d["total_commission"]) for d in ranking] == [
        (1, "m4", 1200),
        (2, "m0", 1000),
        (3, "m9", 950),
        (4, "m1", 900),
        (5, "m2", 800),
    ]
    assert ranking[0]["_id"] == "2026-03-23T14:00:00.000Z|2026-03-23T14:05:00.000Z|1"


def test_count_errors_by_code_and_hour_counts_a_code_once_per_record():
    def error(codes, source_ts, offset):
        return _record(
            {"transaction_id": None, "error_codes": codes, "source": {"timestamp": source_ts}},
            offset=offset,
            timestamp=1_000,
        )

    counts = error_summary.count_errors(
        [
            error(["ERR_AMOUNT", "ERR_TIME"], "2026-03-23T14:10:00.000Z", 0),
            error(["ERR_AMOUNT", "ERR_AMOUNT"], "2026-03-23T14:59:59.999Z", 1),
            error(["ERR_SCHEMA"], None, 2),  # no source time: the error record's own timestamp
            error(["ERR_TIME"], 10**20, 3),  # a source time out of range: the same
        ]
    )
    hour = datetime(2026, 3, 23, 14, tzinfo=UTC)
    epoch_hour = datetime(1970, 1, 1, tzinfo=UTC)
    assert counts == Counter(
        {
            ("ERR_AMOUNT", hour): 2,
            ("ERR_TIME", hour): 1,
            ("ERR_SCHEMA", epoch_hour): 1,
            ("ERR_TIME", epoch_hour): 1,
        }
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"error_codes": []}, "expected a non-empty list 'error_codes', got \\[\\]"),
        ({"error_codes": [{"code": 1}]}, "error codes must be non-empty strings"),
        ("{broken", "value is not JSON"),
    ],
)
def test_error_keys_refuse_what_is_no_error_record_naming_it(value, message):
    with pytest.raises(loop.SinkRecordError, match=message) as err:
        error_summary.error_keys("errs", _record(value, offset=7))
    assert "errs partition 0 offset 7" in str(err.value)


# --- integration: the real test broker and FerretDB -----------------------------------------------
def _produce(settings, topic: str, values: list[dict | str], partition: int = 0) -> None:
    producer = Producer(producer_config(settings))
    for value in values:
        text = value if isinstance(value, str) else json.dumps(value)
        producer.produce(topic, value=text.encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.fixture()
def consumer(stack):
    consumer = Consumer(consumer_config(None, stack))
    yield consumer
    consumer.close()


@pytest.mark.integration
def test_metric_sink_upserts_new_records_only_and_reruns_change_nothing(
    stack, unique_topic, scratch_db, consumer
):
    topic = unique_topic("test.sink.volume", 1)
    coll = "sink_volume_" + topic.rsplit(".", 1)[1]
    _produce(
        stack,
        topic,
        [_volume(m, c, 10 + m, f"v|{m}|{c}") for m in range(3) for c in ("retail", "government")],
    )

    first = live_metrics.sink_metrics(scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None)
    assert (first.records_read, first.documents_written, first.collection_count) == (6, 6, 6)
    assert loop.load_offsets(scratch_db, coll, topic) == {0: 6}

    again = live_metrics.sink_metrics(scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None)
    assert (again.records_read, again.documents_written, again.collection_count) == (0, 0, 6)

    # A streaming update re-emits a window's value under the same metric_id: updated, not added.
    _produce(stack, topic, [_volume(2, "retail", 99, "v|2|retail"), "not json"])
    update = live_metrics.sink_metrics(scratch_db, consumer, topic, VOLUME, coll, log=lambda _: None)
    assert (
        update.records_read,
        update.documents_written,
        update.dead_lettered,
        update.collection_count,
    ) == (2, 1, 1, 6)
    assert scratch_db[coll].find_one({"_id": "v|2|retail"})["transaction_count"] == 99
    assert scratch_db[coll].find_one({"_id": "v|0|retail"})["window_start"] == T0


@pytest.mark.integration
def test_top_merchants_sink_replaces_a_windows_ranking(stack, unique_topic, scratch_db, consumer):
    topic = unique_topic("test.sink.top", 1)
    coll = "sink_top_" + topic.rsplit(".", 1)[1]
    _produce(stack, topic, [_top(0, f"m{i}", 1000 - 100 * i, i + 1) for i in range(5)])
    _produce(stack, topic, [_top(1, "m7", 500, 1)])
    live_metrics.sink_metrics(scratch_db, consumer, topic, TOP, coll, log=lambda _: None)
    # The next trigger: m9 overtakes everyone in window 0.
    _produce(stack, topic, [_top(0, "m9", 5000, 1), _top(0, "m0", 1000, 2)])
    report = live_metrics.sink_metrics(scratch_db, consumer, topic, TOP, coll, log=lambda _: None)
    assert report.records_read == 2

    window0 = list(scratch_db[coll].find({"window_start": T0}).sort("rank", 1))
    assert [(d["rank"], d["merchant_id"]) for d in window0] == [
        (1, "m9"),
        (2, "m0"),
        (3, "m1"),
        (4, "m2"),
        (5, "m3"),
    ]
    assert scratch_db[coll].count_documents({}) == 6  # five ranks of window 0, one of window 1


def _error_log(code_lists: list[list[str]], hour: datetime) -> list[dict]:
    return [
        {
            "transaction_id": f"t{i}",
            "error_codes": codes,
            "errors": {c: "detail" for c in codes},
            "source": {
                "topic": topics.TRANSACTIONS.name,
                "partition": 0,
                "offset": i,
                "timestamp": format_timestamp(hour + timedelta(minutes=i)),
            },
            "raw": "{}",
            "validated_at": format_timestamp(hour),
        }
        for i, codes in enumerate(code_lists)
    ]


@pytest.mark.integration
def test_error_summary_counts_new_records_only_and_reruns_never_double_count(
    stack, unique_topic, scratch_db, consumer
):
    topic = unique_topic("test.sink.errors", 2)
    coll = "error_summary_" + topic.rsplit(".", 1)[1]
    # Written the validator's way: in Kafka transactions, so commit markers sit in the log.
    producer = Producer(producer_config(stack, **{"transactional.id": f"test-{topic}"}))
    producer.init_transactions(30)
    for partition, values in enumerate(
        [
            _error_log([["ERR_AMOUNT"], ["ERR_AMOUNT", "ERR_TIME"]], T0),
            _error_log([["ERR_DEVICE"]], T0),
        ]
    ):
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value=json.dumps(value).encode(), partition=partition)
        producer.commit_transaction(30)
    scratch_db[coll].insert_one(
        {"_id": "ERR_OLD|x", "code": "ERR_OLD", "hour": T0, "count": 5, "run_id": "old"}
    )

    first = error_summary.sink_error_summary(scratch_db, consumer, topic, coll, log=lambda _: None)
    assert first.records_read == 3
    assert first.documents_deleted == 1  # what the topic no longer supports goes
    counts = {d["_id"]: d["count"] for d in scratch_db[coll].find()}
    hour = format_timestamp(T0)
    assert counts == {f"ERR_AMOUNT|{hour}": 2, f"ERR_TIME|{hour}": 1, f"ERR_DEVICE|{hour}": 1}
    assert first.offsets == {0: 3, 1: 2}  # past the commit markers

    again = error_summary.sink_error_summary(scratch_db, consumer, topic, coll, log=lambda _: None)
    assert again.records_read == 0  # incremental: nothing new, nothing re-read
    assert {d["_id"]: d["count"] for d in scratch_db[coll].find()} == counts
    assert again.collection_count == 3

    _produce(stack, topic, _error_log([["ERR_AMOUNT"]], T0 + timedelta(hours=1)), partition=1)
    _produce(stack, topic, _error_log([["ERR_AMOUNT"]], T0), partition=0)
    third = error_summary.sink_error_summary(scratch_db, consumer, topic, coll, log=lambda _: None)
    assert third.records_read == 2
    counts = {d["_id"]: d["count"] for d in scratch_db[coll].find()}
    assert (
        counts[f"ERR_AMOUNT|{hour}"] == 3
        and counts[f"ERR_AMOUNT|{format_timestamp(T0 + timedelta(hours=1))}"] == 1
    )


@pytest.mark.integration
def test_sink_of_an_unknown_topic_names_it(stack, scratch_db, consumer):
    from darooghe.kafka_io import UnknownTopicError

    with pytest.raises(UnknownTopicError, match="test.no-such-topic"):
        live_metrics.sink_metrics(
            scratch_db, consumer, "test.no-such-topic", VOLUME, "x", log=lambda _: None
        )


@pytest.mark.integration
def test_the_streaming_jobs_metric_values_sink_as_agreed(stack, unique_topic, scratch_db, consumer):
    """Contract with the live-metrics job: its own value builders, sunk by ours."""
    from collections import namedtuple

    from darooghe.streaming import metrics_job as job

    start_ms = int(T0.timestamp() * 1000)
    Category = namedtuple(
        "Category",
        "window_start_ms window_end_ms merchant_category transaction_count total_amount "
        "approved_commission approved_amount",
    )
    rows = [Category(start_ms, start_ms + 60_000, cat, 4, 4_000_000, 80_000, 3_000_000)
            for cat in ("retail", "government")]  # fmt: skip
    ByType = namedtuple(
        "ByType", "window_start_ms window_end_ms commission_type total_commission transaction_count"
    )
    cases = [
        (topics.METRICS_CATEGORY_VOLUME.name, [job.category_volume_value(r) for r in rows]),
        (topics.METRICS_COMMISSION_RATIO.name, [job.commission_ratio_value(r) for r in rows]),
        (topics.METRICS_COMMISSION_BY_TYPE.name,
         [job.commission_by_type_value(ByType(start_ms, start_ms + 60_000, "flat", 5000, 2))]),
    ]  # fmt: skip
    for shape, values in cases:
        topic = unique_topic("test.sink.contract", 1)
        coll = "contract_" + topic.rsplit(".", 1)[1]
        _produce(stack, topic, values)
        report = live_metrics.sink_metrics(scratch_db, consumer, topic, shape, coll, log=lambda _: None)
        assert (report.records_read, report.dead_lettered, report.collection_count) == (
            len(values),
            0,
            len(values),
        )
        for value in values:
            doc = scratch_db[coll].find_one({"_id": value["metric_id"]})
            assert doc["window_start"] == T0 and doc["window_end"] == T0 + timedelta(minutes=1)

    topic = unique_topic("test.sink.contract", 1)
    coll = "contract_top_" + topic.rsplit(".", 1)[1]
    window = {"window_start_ms": start_ms, "window_end_ms": start_ms + 300_000}
    first = job.TopMerchantsRanker.ranked(
        {**window, "merchants": {f"m{i}": [100 * i, i] for i in range(1, 8)}}
    )
    later = job.TopMerchantsRanker.ranked({**window, "merchants": {f"m{i}": [100 * i, i] for i in range(1, 8)}
                                           | {"m1": [9000, 9]}})  # fmt: skip
    _produce(stack, topic, first)
    live_metrics.sink_metrics(scratch_db, consumer, topic, TOP, coll, log=lambda _: None)
    _produce(stack, topic, later)
    live_metrics.sink_metrics(scratch_db, consumer, topic, TOP, coll, log=lambda _: None)
    ranking = [(d["rank"], d["merchant_id"]) for d in scratch_db[coll].find().sort("rank", 1)]
    assert ranking == [(1, "m1"), (2, "m7"), (3, "m6"), (4, "m5"), (5, "m4")]
