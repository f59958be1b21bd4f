"""The off-hours analysis judges payments against the merchants of the generator that produced them.

A seeded history (seed 7, as `darooghe demo` writes it, not the default 42) goes through the real
lineage on the test stack: the historical backfill into fresh topics, the lake, the merchants
reference and the off-hours assets. The expected off-hours payments are computed here, in plain
Python, from the records in Kafka and the seed-7 generator's own merchants.
"""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from confluent_kafka import Producer

from darooghe import kafka_io
from darooghe.generator.engine import Engine
from darooghe.generator.params import GeneratorParams
from darooghe.topics import MERCHANTS, Topic
from darooghe_assets import constants as c
from darooghe_assets.assets import batch, generator, lake
from darooghe_assets.assets import merchants as merchants_asset
from darooghe_assets.definitions import defs
from darooghe_assets.resources import build_resources

pytestmark = [pytest.mark.integration, pytest.mark.spark]

TEHRAN = ZoneInfo("Asia/Tehran")
SEED = 7
BACKFILL = {
    "seed": SEED,
    "days": 1,
    "event_rate": 10,
    "merchant_count": 10,
    "customer_count": 100,
    "fraud_rate": 0.0,
    "err_amount_rate": 0.0,
    "err_time_rate": 0.0,
    "err_device_rate": 0.0,
    "err_schema_rate": 0.0,
}


def _params() -> GeneratorParams:
    names = ("seed", "days", "event_rate", "merchant_count", "customer_count", "fraud_rate")
    return GeneratorParams(
        **{k: BACKFILL[k] for k in names},
        err_amount_rate=0.0,
        err_time_rate=0.0,
        err_device_rate=0.0,
        err_schema_rate=0.0,
    )


def _expected_off_hours(records, merchants: dict[str, dict]) -> set[str]:
    out = set()
    for record in records:
        t = json.loads(record.value)
        if t["payment_method"] not in ("pos", "nfc"):
            continue
        when = dt.datetime.fromisoformat(t["timestamp"])
        hour = when.astimezone(TEHRAN).hour
        m = merchants[t["merchant_id"]]
        if not (m["open_hour"] <= hour < m["close_hour"]):
            out.add(t["transaction_id"])
    return out


def test_off_hours_are_judged_against_the_generators_merchants(
    stack, mongo_db, unique_topic, tmp_path, monkeypatch
):
    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path / "home"))  # the backfill ledger
    raw = unique_topic("offhours-raw", 2)
    register_topic = f"offhours-merchants.{raw.rsplit('.', 1)[1]}"
    kafka_io.ensure_topics([Topic(register_topic, 1, "test register", MERCHANTS.config)], stack)
    population = {m["merchant_id"]: m for m in Engine(_params()).population.merchants()}

    run_config = {
        "ops": {
            # ending now: records older than the topic retention would be deleted on arrival
            "historical_backfill": {
                "config": {**BACKFILL, "topic": raw, "merchants_topic": register_topic}
            },
            "merchants": {"config": {"topic": register_topic}},
            "transactions_lake": {
                "config": {
                    "source_topic": raw,
                    "lake_dir": str(tmp_path / "lake"),
                    "checkpoint_dir": str(tmp_path / "checkpoints"),
                }
            },
        }
    }
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [
            generator.historical_backfill,
            lake.transactions_lake,
            merchants_asset.merchants,
            batch.off_hours,
        ],
        resources=build_resources(),
        instance=instance,
        run_config=run_config,
    )
    assert result.success

    records = list(kafka_io.consume_all(raw, stack))
    expected = _expected_off_hours(records, population)
    assert expected  # the generator sends OFF_HOURS_SHARE of in-person payments anywhere

    got = {d["_id"] for d in mongo_db.off_hours_transactions.find({}, {"_id": 1})}
    assert got == expected
    for doc in mongo_db.off_hours_merchants.find():
        m = population[doc["merchant_id"]]
        assert (doc["open_hour"], doc["close_hour"]) == (m["open_hour"], m["close_hour"])

    # the register itself: the seed-7 population, one document per merchant, _id = merchant_id
    stored = {d["_id"]: d for d in mongo_db.merchants.find({}, {"updated_at": 0})}
    assert stored == {k: {"_id": k, **m} for k, m in population.items()}
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "merchants_have_reference"]
    assert check.check_name == "merchants_have_reference" and check.passed
    (md,) = [
        m.metadata
        for m in result.asset_materializations_for_node("off_hours")
        if m.asset_key == c.OFF_HOURS_MERCHANTS
    ]
    assert (md["reference_merchants"].value, md["merchants_without_reference"].value) == (10, 0)

    # merch_6..10 deleted from the register: their payments are reported, not judged
    gone = [f"merch_{i}" for i in range(6, 11)]
    producer = Producer(kafka_io.producer_config(stack))
    for merchant_id in gone:
        producer.produce(register_topic, None, merchant_id)
    assert producer.flush(30) == 0
    again = dg.materialize(
        [merchants_asset.merchants, batch.off_hours],
        resources=build_resources(),
        instance=instance,  # the lake of the first run
        run_config={"ops": {"merchants": run_config["ops"]["merchants"]}},
    )
    assert again.success
    (check,) = [e for e in again.get_asset_check_evaluations() if e.check_name == "merchants_have_reference"]
    assert not check.passed
    (md,) = [
        m.metadata
        for m in again.asset_materializations_for_node("off_hours")
        if m.asset_key == c.OFF_HOURS_MERCHANTS
    ]
    in_person_gone = sum(
        1
        for r in records
        if json.loads(r.value)["merchant_id"] in gone
        and json.loads(r.value)["payment_method"] in ("pos", "nfc")
    )
    assert (md["reference_merchants"].value, md["merchants_without_reference"].value) == (5, 5)
    assert md["payments_not_judged"].value == in_person_gone
    assert check.metadata["merchants_without_reference"].value == 5
    got = {d["_id"] for d in mongo_db.off_hours_transactions.find({}, {"_id": 1})}
    kept = {k: m for k, m in population.items() if k not in gone}
    assert got == _expected_off_hours(
        [r for r in records if json.loads(r.value)["merchant_id"] in kept], kept
    )
    for doc in mongo_db.off_hours_merchants.find({"merchant_id": {"$in": gone}}):
        assert (doc["hours_source"], doc["off_hours_count"], doc["open_hour"]) == (
            "no_reference",
            None,
            None,
        )


def test_lineage_runs_from_the_generator_through_the_register_to_off_hours():
    graph = defs.resolve_asset_graph()
    parents = {n.key: set(n.parent_keys) for n in graph.asset_nodes}
    assert c.HISTORICAL_BACKFILL in parents[c.MERCHANTS_TOPIC]
    assert dg.AssetKey("live_generator") in parents[c.MERCHANTS_TOPIC]
    assert parents[c.MERCHANTS] == {c.MERCHANTS_TOPIC}
    for key in (c.OFF_HOURS_TRANSACTIONS, c.OFF_HOURS_MERCHANTS):
        assert c.MERCHANTS in parents[key]
    checks = {(k.asset_key, k.name) for k in graph.asset_check_keys}
    assert (c.OFF_HOURS_MERCHANTS, "merchants_have_reference") in checks
