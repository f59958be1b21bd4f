"""The batch layer end to end on the test stack: a known history replayed into a valid-transactions
topic, the lake + batch + storage assets materialised with the real resources, exact documents in
MongoDB, every check passing; a second materialisation changes nothing; retention removes exactly
what is over 24 hours old.

History (hours before now; commission by darooghe.commission):
  1  70h cust_1 merch_1 retail        100,000   approved flat         2,000
  2  50h cust_1 merch_1 retail      1,000,000   approved progressive 15,000
  3  30h cust_2 merch_2 food_service  400,000   approved tiered      10,000
  4  26h cust_2 merch_2 food_service 2,000,000  approved tiered      30,000
  5  20h cust_3 merch_1 retail        300,000   declined flat
  6  10h cust_3 merch_2 food_service  600,000   approved flat        12,000
  7   5h cust_1 merch_2 food_service   50,000   pending  flat
  8   1h cust_2 merch_1 retail        700,000   approved tiered      14,000
"""

import datetime as dt

import dagster as dg
import pytest
from bson.codec_options import CodecOptions

from darooghe.kafka_io import ensure_topics, produce_records
from darooghe.merchant_reference import reference_records
from darooghe.records import Record
from darooghe.schema import epoch_ms
from darooghe.topics import MERCHANTS, Topic
from darooghe_assets.assets import batch, lake, merchants, storage
from darooghe_assets.checks import batch as batch_checks
from darooghe_assets.resources import build_resources
from darooghe_tests.batch_data import txn, value_json

pytestmark = [pytest.mark.integration, pytest.mark.spark]

UTC = dt.UTC
SPECS = [
    (70, "cust_1", "merch_1", "retail", 100_000, "approved", "flat"),
    (50, "cust_1", "merch_1", "retail", 1_000_000, "approved", "progressive"),
    (30, "cust_2", "merch_2", "food_service", 400_000, "approved", "tiered"),
    (26, "cust_2", "merch_2", "food_service", 2_000_000, "approved", "tiered"),
    (20, "cust_3", "merch_1", "retail", 300_000, "declined", "flat"),
    (10, "cust_3", "merch_2", "food_service", 600_000, "approved", "flat"),
    (5, "cust_1", "merch_2", "food_service", 50_000, "pending", "flat"),
    (1, "cust_2", "merch_1", "retail", 700_000, "approved", "tiered"),
]
#: the merchant register the history's generator would have published
REGISTER = [
    {"merchant_id": "merch_1", "merchant_category": "retail", "city": "Tehran",
     "location": {"lat": 35.69, "lng": 51.39}, "commission_type": "flat",
     "open_hour": 9, "close_hour": 21},
    {"merchant_id": "merch_2", "merchant_category": "food_service", "city": "Tehran",
     "location": {"lat": 35.70, "lng": 51.40}, "commission_type": "tiered",
     "open_hour": 8, "close_hour": 23},
]  # fmt: skip
ASSETS = [lake.transactions_lake, *dg.load_assets_from_modules([batch, merchants, storage])]
CHECKS = dg.load_asset_checks_from_modules([batch_checks])


def _history(now: dt.datetime) -> list[dict]:
    return [
        txn(
            now - dt.timedelta(hours=h),
            customer=cu,
            merchant=m,
            category=cat,
            amount=a,
            status=s,
            ctype=ct,
            method="pos" if i % 2 else "online",
        )
        for i, (h, cu, m, cat, a, s, ct) in enumerate(SPECS)
    ]


def _counts(db) -> dict[str, int]:
    return {name: db[name].count_documents({}) for name in sorted(db.list_collection_names())}


def test_batch_group_on_a_replayed_history(stack, mongo_db, unique_topic, tmp_path, monkeypatch):
    db = mongo_db.client.get_database(
        mongo_db.name, codec_options=CodecOptions(tz_aware=True, tzinfo=UTC)
    )
    now = dt.datetime.now(UTC).replace(microsecond=0)
    history = _history(now)
    topic = unique_topic("valid-batch", 2)
    produce_records(
        topic,
        [Record(t["customer_id"], value_json(t), epoch_ms(t["event_time"])) for t in history],
        stack,
    )

    register_topic = f"merchants-batch.{topic.rsplit('.', 1)[1]}"
    ensure_topics([Topic(register_topic, 1, "test register", MERCHANTS.config)], stack)
    produce_records(
        register_topic, reference_records(REGISTER, epoch_ms(history[0]["event_time"])), stack
    )

    instance = dg.DagsterInstance.ephemeral()
    run_config = {
        "ops": {
            "merchants": {"config": {"topic": register_topic}},
            "transactions_lake": {
                "config": {
                    "source_topic": topic,
                    "lake_dir": str(tmp_path / "lake"),
                    "checkpoint_dir": str(tmp_path / "checkpoints"),
                }
            },
        }
    }
    resources = build_resources()
    first = dg.materialize(
        [*ASSETS, *CHECKS], resources=resources, instance=instance, run_config=run_config
    )
    assert first.success
    evaluations = first.get_asset_check_evaluations()
    failed = [
        (e.asset_key.to_user_string(), e.check_name, e.metadata)
        for e in evaluations
        if not e.passed
    ]
    assert failed == []
    assert len(evaluations) >= 40

    lake_md = first.asset_materializations_for_node("transactions_lake")[0].metadata
    assert lake_md["offsets_lost"].value == 0
    loss_checks = [
        e for e in first.get_asset_check_evaluations() if e.check_name == lake.NO_DATA_LOSS
    ]
    assert [e.passed for e in loss_checks] == [True]
    assert (lake_md["rows_added"].value, lake_md["lake_rows"].value) == (8, 8)

    assert {d["_id"]: d for d in db.commission_by_category.find({}, {"updated_at": 0})} == {
        "retail": {
            "_id": "retail",
            "merchant_category": "retail",
            "transaction_count": 3,
            "total_amount": 1_800_000,
            "total_commission": 31_000,
            "avg_commission": pytest.approx(31_000 / 3),
            "commission_ratio": pytest.approx(31_000 / 1_800_000),
        },
        "food_service": {
            "_id": "food_service",
            "merchant_category": "food_service",
            "transaction_count": 3,
            "total_amount": 3_000_000,
            "total_commission": 52_000,
            "avg_commission": pytest.approx(52_000 / 3),
            "commission_ratio": pytest.approx(52_000 / 3_000_000),
        },
    }
    profiles = {d["_id"]: d for d in db.customer_profiles.find()}
    assert set(profiles) == {"cust_1", "cust_2", "cust_3"}
    c1 = profiles["cust_1"]
    assert (
        c1["customer_id"],
        c1["txn_count"],
        c1["avg_amount"],
        c1["total_amount"],
        c1["valid_txn_count"],
    ) == ("cust_1", 2, 550_000.0, 1_100_000, 3)
    assert (c1["first_seen"], c1["last_seen"]) == (
        now - dt.timedelta(hours=70),
        now - dt.timedelta(hours=5),
    )
    assert (
        c1["home_city"] == "Tehran" and c1["segment"] and c1["updated_at"] <= dt.datetime.now(UTC)
    )
    assert profiles["cust_2"]["avg_amount"] == pytest.approx(3_100_000 / 3)
    assert (profiles["cust_3"]["txn_count"], profiles["cust_3"]["avg_amount"]) == (1, 600_000.0)

    # the detailed collection: events 5-8 are within 24 hours
    assert sorted(d["amount"] for d in db.transactions.find()) == [
        50_000,
        300_000,
        600_000,
        700_000,
    ]
    assert sorted(d["_id"] for d in db.merchants.find()) == ["merch_1", "merch_2"]
    assert {d["hours_source"] for d in db.off_hours_merchants.find()} == {"merchant_reference"}
    assert db.customer_segments.count_documents({}) == 3
    assert db.temporal_patterns.count_documents({}) == 168
    assert sum(d["transaction_count"] for d in db.transactions_daily.find()) == 8
    assert db.summary_by_merchant.find_one({"_id": "merch_1"})["commission"] == 31_000
    assert sum(d["commission"] for d in db.commission_by_category_over_time.find()) == 83_000
    recommendations = {d["_id"]: d for d in db.commission_recommendations.find()}
    assert recommendations["retail"]["udf_agreement"] == 1.0
    counts = _counts(db)

    # a second materialisation: nothing new in Kafka, the same documents
    second = dg.materialize(
        [*ASSETS, *CHECKS], resources=resources, instance=instance, run_config=run_config
    )
    assert second.success
    assert (
        second.asset_materializations_for_node("transactions_lake")[0].metadata["rows_added"].value
        == 0
    )
    assert all(e.passed for e in second.get_asset_check_evaluations())
    assert _counts(db) == counts

    # retention, five hours later: event 5 (20 h old now) is then over 24 h old, and only it
    monkeypatch.setenv("DAROOGHE_CLOCK_SKEW_MS", str(6 * 3_600_000))  # a clock 5 h ahead, on purpose
    later = {
        "ops": {
            "transactions_retention": {"config": {"now": (now + dt.timedelta(hours=5)).isoformat()}}
        }
    }
    result = dg.materialize(
        [storage.transactions_retention], resources=resources, instance=instance, run_config=later
    )
    assert (
        result.asset_materializations_for_node("transactions_retention")[0]
        .metadata["documents_removed"]
        .value
        == 1
    )
    assert sorted(d["amount"] for d in db.transactions.find()) == [50_000, 600_000, 700_000]


def test_the_lake_check_fails_naming_records_deleted_before_the_lake_read_them():
    from darooghe.batch.lake import IngestResult

    check = lake.data_loss_check(IngestResult(offsets_lost={1: 40}), "valid")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "40 offset(s) of valid were deleted" in check.description
    assert lake.data_loss_check(IngestResult(), "valid").passed
