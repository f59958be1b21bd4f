"""Merchant reference records: their encoding, the generator's side file, and the batch reader on
the real broker (latest value per key, deletions, invalid records named)."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from darooghe import kafka_io, merchant_reference
from darooghe.batch import merchants as mr
from darooghe.fraud.geo import haversine_km
from darooghe.generator.engine import Engine, Renderer
from darooghe.generator.params import GeneratorParams
from darooghe.generator.population import CITIES
from darooghe.generator.publishers import FilePublisher
from darooghe.generator.runner import run_history
from darooghe.records import read_records
from darooghe.topics import LABEL_HEADER, MERCHANTS, Topic

SMALL = {"merchant_count": 10, "customer_count": 100, "event_rate": 10}
END_MS = 1_773_964_800_000  # 2026-03-20T00:00:00Z


def _records(seed: int, timestamp: int = 0):
    population = Engine(GeneratorParams(seed=seed, **SMALL)).population
    return merchant_reference.reference_records(population.merchants(), timestamp)


def test_reference_record_encoding():
    records = _records(7, timestamp=123)
    assert [r.key for r in records] == [f"merch_{i}" for i in range(1, 11)]
    city = {c.name: c for c in CITIES}
    for r in records:
        assert (r.timestamp, r.headers) == (123, {})
        value = json.loads(r.value)
        assert tuple(value) == merchant_reference.FIELDS and value["merchant_id"] == r.key
        assert merchant_reference.valid_hours(value["open_hour"], value["close_hour"])
        home = city[value["city"]]
        lat, lng = value["location"]["lat"], value["location"]["lng"]
        assert haversine_km(lat, lng, home.lat, home.lng) < 15
        assert r.value == json.dumps(value, separators=(",", ":"))  # compact, fixed order
    # same seed: the same records, byte for byte; another seed: other merchants
    assert _records(7, timestamp=123) == records
    assert [r.value for r in _records(42, timestamp=123)] != [r.value for r in records]


def test_encoding_refuses_an_incomplete_or_impossible_merchant():
    merchant = json.loads(_records(7)[0].value)
    with pytest.raises(ValueError, match="'merch_1': reference record lacks city"):
        merchant_reference.encode({k: v for k, v in merchant.items() if k != "city"})
    with pytest.raises(ValueError, match="'merch_1': business hours 22..8"):
        merchant_reference.encode({**merchant, "open_hour": 22, "close_hour": 8})


def test_side_file_name():
    assert merchant_reference.side_file("out/h.jsonl").as_posix() == "out/h.merchants.jsonl"
    assert merchant_reference.side_file("h").as_posix() == "h.merchants.jsonl"


def test_file_sink_writes_the_register_beside_its_output(tmp_path):
    def generate(path):
        engine = Engine(GeneratorParams(seed=7, **SMALL))
        sink = FilePublisher(path, Renderer(engine.population, LABEL_HEADER))
        run_history(engine, sink, END_MS - 3_600_000, END_MS)
        sink.close()
        return merchant_reference.side_file(path)

    a, b = generate(tmp_path / "a.jsonl"), generate(tmp_path / "b.jsonl")
    assert a.read_bytes() == b.read_bytes()  # same seed, same window: the same bytes
    first_event = next(read_records(tmp_path / "a.jsonl")).timestamp
    assert list(read_records(a)) == _records(7, timestamp=first_event)


@pytest.mark.integration
@pytest.mark.spark
def test_batch_reader_takes_the_latest_record_per_merchant(stack, spark, unique_topic):
    topic = f"merchants-read.{unique_topic('x').rsplit('.', 1)[1]}"
    kafka_io.ensure_topics([Topic(topic, 1, "test register", MERCHANTS.config)], stack)
    seed7, seed42 = _records(7), _records(42)
    producer = Producer(kafka_io.producer_config(stack))
    for r in [*seed42, *seed7, *seed7]:  # offsets 0-29: an older register, then one twice
        producer.produce(topic, r.value, r.key)
    producer.produce(topic, None, "merch_10")  # a deleted merchant
    assert producer.flush(30) == 0

    latest = mr.latest_reference(mr.read_reference(spark, stack.kafka_bootstrap, topic))
    assert mr.reference_problems(latest, topic) == []
    got = [row.asDict(recursive=True) for row in mr.register(latest).collect()]
    want = sorted((json.loads(r.value) for r in seed7[:9]), key=lambda m: m["merchant_id"])
    assert got == want

    producer.produce(topic, '{"merchant_id":"merch_3","open_hour":9}', "merch_3")
    producer.produce(topic, "not json", "merch_4")
    assert producer.flush(30) == 0
    latest = mr.latest_reference(mr.read_reference(spark, stack.kafka_bootstrap, topic))
    assert mr.reference_problems(latest, topic) == [
        f"{topic} partition 0 offset 31 key 'merch_3': unknown merchant_category null",
        f"{topic} partition 0 offset 32 key 'merch_4': value is not a merchant reference object",
    ]
