"""MongoDB storage of the batch layer on the test FerretDB: idempotent writes, the detailed
`transactions` collection (window, cursor, indexes, TTL detection, explain, retention) and the
aggregation summaries with figures worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from pymongo.errors import OperationFailure

from darooghe.batch import summaries
from darooghe.batch.transactions_store import (
    ACCESS_PATHS,
    ACTIVITY,
    COLLECTION,
    HOURLY,
    apply_retention,
    buckets_between,
    ensure_indexes,
    explain_dashboard_queries,
    load_recent_transactions,
)
from darooghe.mongo_write import STAGING, clean_leftovers, insert_new, replace_collection
from darooghe.schema import FIELDS
from darooghe.services import postgres
from darooghe_tests.batch_data import lake_frame, txn

pytestmark = pytest.mark.integration

UTC = dt.UTC


@pytest.fixture()
def db(mongo_db):
    """The test database, reading datetimes as aware UTC (what MongoResource clients do)."""
    from bson.codec_options import CodecOptions

    return mongo_db.client.get_database(
        mongo_db.name, codec_options=CodecOptions(tz_aware=True, tzinfo=UTC)
    )


def test_replace_collection_is_idempotent_and_drops_stale_documents(mongo_db):
    first = replace_collection(mongo_db, "things", [{"_id": i, "v": i} for i in range(5)])
    assert (first.written, first.previous) == (5, 0)
    again = replace_collection(mongo_db, "things", [{"_id": i, "v": 10 * i} for i in range(3)])
    assert (again.written, again.previous) == (3, 5)
    docs = sorted(mongo_db.things.find(), key=lambda d: d["_id"])
    assert [(d["_id"], d["v"]) for d in docs] == [(0, 0), (1, 10), (2, 20)]
    assert len({d["updated_at"] for d in docs}) == 1
    assert [n for n in mongo_db.list_collection_names() if "staging" in n] == []


def test_replace_collection_refuses_a_duplicate_key_and_keeps_the_old_content(mongo_db):
    replace_collection(mongo_db, "things", [{"_id": "a"}])
    with pytest.raises(ValueError, match="things: _id .*a.* occurs twice"):
        replace_collection(mongo_db, "things", [{"_id": "a"}, {"_id": "a"}])
    assert [d["_id"] for d in mongo_db.things.find()] == ["a"]
    assert [n for n in mongo_db.list_collection_names() if "staging" in n] == []


def test_replace_collection_with_no_documents_leaves_an_empty_collection(mongo_db):
    replace_collection(mongo_db, "things", [{"_id": 1}])
    replace_collection(mongo_db, "things", [])
    assert "things" in mongo_db.list_collection_names() and mongo_db.things.count_documents({}) == 0


def test_a_failed_swap_keeps_the_old_collection(mongo_db, monkeypatch):
    """FerretDB has no dropTarget: the old copy is set aside, never dropped before the new is in."""
    from darooghe import mongo_write

    replace_collection(mongo_db, "things", [{"_id": 1, "v": "old"}])
    real = mongo_write._rename

    def rename_fails_into_place(db, source, target, **options):
        if STAGING in source and target == "things" and not options:
            raise OperationFailure("injected: rename into place failed")
        real(db, source, target, **options)

    monkeypatch.setattr(mongo_write, "_rename", rename_fails_into_place)
    with pytest.raises(OperationFailure, match="injected"):
        replace_collection(mongo_db, "things", [{"_id": 2, "v": "new"}])
    assert [(d["_id"], d["v"]) for d in mongo_db.things.find()] == [(1, "old")]
    assert [n for n in mongo_db.list_collection_names() if "__" in n] == []


def test_leftovers_of_a_dead_run_are_cleaned_or_restored(mongo_db):
    """A run that died between its renames left `things` missing and the old copy set aside."""
    mongo_db["things__previous_abc"].insert_one({"_id": 1})
    mongo_db["things__staging_1000_dead"].insert_one({"_id": 9})  # started in 1970: stale
    done = clean_leftovers(mongo_db, "things")
    assert sorted(done) == ["dropped things__staging_1000_dead", "restored things from things__previous_abc"]
    assert [d["_id"] for d in mongo_db.things.find()] == [1]
    replace_collection(mongo_db, "things", [{"_id": 2}])
    assert sorted(mongo_db.list_collection_names()) == ["things"]


def test_insert_new_counts_what_was_there(mongo_db):
    assert insert_new(mongo_db, "t", [{"_id": i} for i in range(3)]).written == 3
    result = insert_new(mongo_db, "t", [{"_id": i} for i in range(5)])
    assert (result.written, result.already_present) == (2, 3)


def test_ttl_is_detected_and_an_index_serves_every_access_path(db, stack):
    report = ensure_indexes(db, postgres.url(stack))
    # FerretDB 1.x has no TTL: retention removes old documents
    assert report.ttl is False and "NotImplemented" in report.ttl_detail
    per_collection = {}
    for path in ACCESS_PATHS:
        per_collection.setdefault(path.collection, set()).update(path.fields)
    assert len(report.indexes) == sum(len(f) for f in per_collection.values())
    assert all(name.endswith("_gin") for name in report.indexes)
    assert ensure_indexes(db, postgres.url(stack)).indexes == report.indexes


def _day_of_documents(now: dt.datetime, n: int) -> list[dict]:
    """`n` transaction-shaped documents spread over the 24 hours before `now`."""
    docs = []
    for i in range(n):
        t = now - dt.timedelta(seconds=i * 86_400 / n)
        docs.append(
            {
                "_id": f"t{i:06d}",
                "merchant_id": f"merch_{i % 50}",
                "merchant_category": ("retail", "food_service", "entertainment")[i % 3],
                "customer_id": f"cust_{i % 1000}",
                "amount": 100_000 + i,
                "event_time": t,
                "event_date": t.strftime("%Y-%m-%d"),
                "event_hour": t.hour,
            }
        )
    return docs


def test_every_access_path_is_an_index_scan_on_postgresql(db, stack):
    """FerretDB returns PostgreSQL's plan: each documented query must read an index, not the table."""
    now = dt.datetime.now(UTC).replace(microsecond=0)
    insert_new(db, COLLECTION, _day_of_documents(now, 30_000))
    rollup = [
        {"_id": f"{d}|{h:02d}|{m}", "event_date": d, "event_hour": h, "merchant_id": m}
        for d, h in buckets_between(now - dt.timedelta(hours=24), now)
        for m in range(40)
    ]
    insert_new(db, HOURLY, rollup)
    ensure_indexes(db, postgres.url(stack))  # also ANALYZEs the tables it indexes
    plans = explain_dashboard_queries(db, now)
    assert set(plans) == {p.name for p in ACCESS_PATHS}
    for name, plan in plans.items():
        print(name, plan)
        assert plan["server"] == "FerretDB" and plan["filter_pushdown"] is True, name
        assert plan["uses_index"] and not plan["collection_scan"], name
        assert all(index.endswith("_gin") for index in plan["uses_index"]), name


def test_load_window_cursor_rollups_and_retention(spark, db, stack, tmp_path):
    now = dt.datetime.now(UTC).replace(microsecond=0)
    # hours before now; "f" is dated 20 minutes after now (a producer clock within the allowance)
    ages = {"a": 1, "b": 10, "c": 23.5, "d": 25, "e": 72, "f": -1 / 3}
    history = [
        txn(
            now - dt.timedelta(hours=h),
            tid=tid,
            customer=f"cust_{i}",
            method="mobile" if tid == "a" else "pos",
        )
        for i, (tid, h) in enumerate(ages.items())
    ]
    lake = lake_frame(spark, history)
    first = load_recent_transactions(
        lake, db, stack.mongo_uri, str(tmp_path), now=now, log=lambda m: None
    )
    assert (first.rows_selected, first.written, first.already_present) == (4, 4, 0)
    docs = {d["_id"]: d for d in db[COLLECTION].find()}
    # "f" is loaded although it is after now: the cursor passed it, a later load would not see it
    assert set(docs) == {"a", "b", "c", "f"}
    a = docs["a"]
    assert [k for k in a if k in FIELDS] == list(FIELDS)
    assert a["event_time"] == now - dt.timedelta(hours=1)
    assert (
        a["event_date"] == a["event_time"].strftime("%Y-%m-%d")
        and a["event_hour"] == a["event_time"].hour
    )
    assert a["device_info"] == {"os": "Android", "app_version": "2.4.1", "device_model": "Pixel 9"}
    assert docs["b"]["device_info"] == {} and docs["b"]["failure_reason"] is None
    assert a["location"] == {"lat": 35.6892, "lng": 51.3890} and isinstance(a["amount"], int)
    # one rollup document per (hour, merchant) and per hour, summing to the documents loaded
    assert sum(d["transactions"] for d in db[ACTIVITY].find()) == 4
    assert sum(d["transactions"] for d in db[HOURLY].find()) == 4
    assert {d["_id"] for d in db[ACTIVITY].find()} == {
        f"{d['event_date']}|{d['event_hour']:02d}" for d in docs.values()
    }

    # nothing new after the cursor: a second load selects nothing and changes nothing
    second = load_recent_transactions(
        lake, db, stack.mongo_uri, str(tmp_path), now=now, log=lambda m: None
    )
    assert (second.rows_selected, second.written) == (0, 0)
    assert db[COLLECTION].count_documents({}) == 4

    # a lost cursor: everything in the window is offered again, and refused as present
    db.batch_state.delete_many({})
    third = load_recent_transactions(
        lake, db, stack.mongo_uri, str(tmp_path), now=now, log=lambda m: None
    )
    assert (third.rows_selected, third.written, third.already_present) == (4, 0, 4)
    assert sum(d["transactions"] for d in db[ACTIVITY].find()) == 4

    # two hours later, "c" (23.5 h old then) is over 24 h old: retention removes exactly it,
    # and the rollups of its hour, which is then wholly older than the window
    later = now + dt.timedelta(hours=2)
    result = apply_retention(db, later, log=lambda m: None)
    assert result.removed == 1
    assert {d["_id"] for d in db[COLLECTION].find()} == {"a", "b", "f"}
    assert apply_retention(db, later, log=lambda m: None).removed == 0
    assert sum(d["transactions"] for d in db[ACTIVITY].find()) == 3


DAILY = [
    # local_date, week, month, merchant, category, segment, count, approved, declined, amount, commission
    (
        "2026-03-23",
        "2026-W13",
        "2026-03",
        "merch_1",
        "retail",
        "Champions",
        3,
        2,
        1,
        1_100_000,
        17_000,
    ),
    ("2026-03-24", "2026-W13", "2026-03", "merch_1", "retail", "Lost", 1, 1, 0, 100_000, 2_000),
    (
        "2026-03-24",
        "2026-W13",
        "2026-03",
        "merch_2",
        "food_service",
        "Champions",
        2,
        1,
        0,
        400_000,
        10_000,
    ),
    ("2026-04-01", "2026-W14", "2026-04", "merch_2", "food_service", "Lost", 1, 0, 1, 0, 0),
]


def _daily_docs():
    keys = (
        "local_date",
        "week",
        "month",
        "merchant_id",
        "merchant_category",
        "segment",
        "transaction_count",
        "approved_count",
        "declined_count",
        "approved_amount",
        "commission",
    )
    docs = [{"_id": f"{r[0]}|{r[3]}|{r[5]}", **dict(zip(keys, r))} for r in DAILY]
    # every (day, merchant) and every (segment, merchant) of DAILY occurs once: each is the first
    return [{**d, "merchant_day_first": 1, "segment_merchant_first": 1} for d in docs]


def test_group_sums_runs_one_accumulator_per_pipeline(mongo_db):
    mongo_db.transactions_daily.insert_many(_daily_docs())
    got = summaries.group_sums(
        mongo_db, "transactions_daily", {"m": "merchant_id"}, {"n": 1, "amount": "approved_amount"}
    )
    assert got == {
        ("merch_1",): {"m": "merch_1", "n": 2, "amount": 1_200_000},
        ("merch_2",): {"m": "merch_2", "n": 2, "amount": 400_000},
    }


def test_summaries_by_merchant_segment_period_and_category(mongo_db):
    mongo_db.transactions_daily.insert_many(_daily_docs())
    results = summaries.build_summaries(mongo_db)
    assert {k: r.documents for k, r in results.items()} == {
        "summary_by_merchant": 2,
        "summary_by_segment": 2,
        "summary_by_period": 3 + 2 + 2,
        "commission_by_category_over_time": 4,
    }
    m1 = mongo_db.summary_by_merchant.find_one({"_id": "merch_1"})
    assert (
        m1["transaction_count"],
        m1["approved_count"],
        m1["approved_amount"],
        m1["commission"],
        m1["active_days"],
    ) == (4, 3, 1_200_000, 19_000, 2)
    assert m1["approval_rate"] == pytest.approx(0.75) and m1["avg_amount"] == pytest.approx(400_000)
    assert m1["commission_ratio"] == pytest.approx(19_000 / 1_200_000)
    lost = mongo_db.summary_by_segment.find_one({"_id": "Lost"})
    assert (
        lost["transaction_count"],
        lost["approved_amount"],
        lost["declined_count"],
        lost["merchants"],
    ) == (2, 100_000, 1, 2)
    w13 = mongo_db.summary_by_period.find_one({"_id": "week|2026-W13"})
    assert (w13["period"], w13["period_key"], w13["transaction_count"], w13["commission"]) == (
        "week",
        "2026-W13",
        6,
        29_000,
    )
    assert mongo_db.summary_by_period.find_one({"_id": "month|2026-04"})["avg_amount"] is None
    assert (
        mongo_db.summary_by_period.find_one({"_id": "day|2026-03-24"})["approved_amount"] == 500_000
    )
    food = mongo_db.commission_by_category_over_time.find_one({"_id": "food_service|2026-03-24"})
    assert (food["commission"], food["approved_amount"], food["commission_ratio"]) == (
        10_000,
        400_000,
        0.025,
    )
    # re-running replaces: same documents, same counts
    summaries.build_summaries(mongo_db)
    assert mongo_db.summary_by_period.count_documents({}) == 7
