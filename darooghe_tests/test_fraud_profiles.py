"""Historical averages for AMOUNT_ANOMALY: the file and MongoDB sources and the refresh mechanism."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest

from darooghe.config import load_settings
from darooghe.fraud.profiles import (
    ProfileRefresher,
    ProfilesError,
    ProfileSnapshot,
    ProfileSource,
    load_profiles_file,
    write_profiles_file,
)


def test_profiles_file_round_trip_and_errors(tmp_path):
    path = tmp_path / "p.jsonl"
    write_profiles_file({"cust_1": 812345.5, "cust_2": 10}, path)
    assert load_profiles_file(path) == {"cust_1": 812345.5, "cust_2": 10.0}
    path.write_text('{"customer_id": "cust_1", "avg_amount": "lots"}\n')
    with pytest.raises(ProfilesError, match=r"p.jsonl:1: avg_amount must be a number, got 'lots'"):
        load_profiles_file(path)
    with pytest.raises(ProfilesError, match="no such profiles file"):
        load_profiles_file(tmp_path / "missing.jsonl")


def test_refresher_rewrites_the_snapshot_only_when_the_source_changed(tmp_path):
    source_file = tmp_path / "p.jsonl"
    write_profiles_file({"cust_1": 100.0}, source_file)
    snapshot = ProfileSnapshot(tmp_path / "snapshot.json")
    refresher = ProfileRefresher(
        ProfileSource(source_file), snapshot, refresh_seconds=0, log=lambda m: None
    )
    assert refresher.refresh() and snapshot.read() == {"cust_1": 100.0}
    assert not refresher.refresh()  # unchanged source: no new snapshot
    write_profiles_file({"cust_1": 100.0, "cust_2": 5.0}, source_file)
    os.utime(source_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert refresher.refresh() and snapshot.read() == {"cust_1": 100.0, "cust_2": 5.0}
    assert refresher.customers == 2


def test_refresher_respects_its_interval_and_survives_a_broken_source(tmp_path):
    source_file = tmp_path / "p.jsonl"
    write_profiles_file({"cust_1": 100.0}, source_file)
    snapshot = ProfileSnapshot(tmp_path / "snapshot.json")
    messages = []
    refresher = ProfileRefresher(
        ProfileSource(source_file), snapshot, refresh_seconds=3600, log=messages.append
    )
    assert refresher.refresh(force=True)
    source_file.write_text("{broken\n")
    assert not refresher.refresh()  # within the interval: not even looked at
    assert not refresher.refresh(force=True)
    assert snapshot.read() == {"cust_1": 100.0} and "keeping the previous snapshot" in messages[-1]


@pytest.mark.integration
def test_profiles_from_mongodb(stack, mongo_db):
    now = datetime.now(UTC)
    mongo_db["customer_profiles"].insert_many(
        [
            {
                "_id": "cust_1",
                "customer_id": "cust_1",
                "avg_amount": 812345.5,
                "txn_count": 4,
                "updated_at": now,
            },
            {
                "_id": "cust_2",
                "customer_id": "cust_2",
                "avg_amount": None,
                "txn_count": 0,
                "updated_at": now,
            },
        ]
    )
    source = ProfileSource(None, load_settings())
    assert source.load() == {"cust_1": 812345.5}
    before = source.fingerprint()
    mongo_db["customer_profiles"].update_one(
        {"_id": "cust_1"}, {"$set": {"avg_amount": 5.0, "updated_at": datetime.now(UTC)}}
    )
    assert source.fingerprint() != before
    assert json.loads(json.dumps(source.load())) == {"cust_1": 5.0}


@pytest.mark.integration
def test_a_missing_profiles_collection_keeps_the_previous_averages_and_says_so(stack, mongo_db, tmp_path):
    """A vanished `customer_profiles` must not silently switch AMOUNT_ANOMALY off."""
    mongo_db["customer_profiles"].insert_one(
        {"_id": "cust_1", "customer_id": "cust_1", "avg_amount": 100.0, "updated_at": datetime.now(UTC)}
    )
    snapshot = ProfileSnapshot(tmp_path / "snapshot.json")
    messages: list[str] = []
    refresher = ProfileRefresher(
        ProfileSource(None, load_settings()), snapshot, refresh_seconds=0, log=messages.append
    )
    assert refresher.refresh(force=True) and snapshot.read() == {"cust_1": 100.0}
    mongo_db.drop_collection("customer_profiles")
    with pytest.raises(LookupError, match="customer_profiles.*missing"):
        ProfileSource(None, load_settings()).load()
    assert not refresher.refresh(force=True)
    assert snapshot.read() == {"cust_1": 100.0}
    assert "missing" in messages[-1] and "keeping the previous snapshot" in messages[-1]
