"""4. Kill the database server (PostgreSQL under FerretDB, SIGKILL: no clean shutdown) in the middle
of a sink run, start it again, run the sink again: it resumes from the cursor it saved (never from
the start), and every record is in MongoDB once: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer
from pymongo import MongoClient

from darooghe.fraud.rules import RULES
from darooghe.kafka_io import producer_config
from darooghe.kafka_to_mongo.loop import load_offsets
from darooghe.services import stack as services
from darooghe.services.process import ManagedProcess
from darooghe_tests.faults.harness import REPO, report

pytestmark = [pytest.mark.faults, pytest.mark.integration]

N = 8000
CHUNK = 200
SINK = """
import sys
from confluent_kafka import Consumer
from pymongo import MongoClient
from darooghe.config import load_settings
from darooghe.kafka_io import consumer_config
from darooghe.kafka_to_mongo.fraud_alerts import sink_fraud_alerts
s = load_settings()
topic, coll, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
with MongoClient(s.mongo_uri, serverSelectionTimeoutMS=5000) as client:
    consumer = Consumer(consumer_config(None, s))
    report = sink_fraud_alerts(client[s.mongo_db], consumer, topic, coll, chunk_records=chunk)
    print("RECORDS_READ", report.records_read)
"""


def _alerts(n: int) -> list[dict]:
    t0 = datetime(2026, 3, 23, 10, tzinfo=UTC)
    rules = sorted(RULES)
    return [
        {
            "alert_id": f"fault-{i:06d}",
            "rule": rules[i % len(rules)],
            "transaction_id": str(uuid.UUID(int=i)),
            "customer_id": f"cust_{i % 97}",
            "event_time": (t0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "detected_at": (t0 + timedelta(seconds=i + 1)).isoformat().replace("+00:00", "Z"),
            "evidence": {"n": i},
            "severity": "high",
        }
        for i in range(n)
    ]


def test_kill_the_database_during_a_sink_run_then_resume(stack, unique_topic, tmp_path):
    topic = unique_topic("test.faults.sink", 2)
    coll = f"fault_sink_{topic.rsplit('.', 1)[1]}"
    producer = Producer(producer_config(stack))
    for a in _alerts(N):
        producer.produce(topic, key=a["customer_id"].encode(), value=json.dumps(a).encode())
        producer.poll(0)
    assert producer.flush(60) == 0
    cmd = [sys.executable, "-c", SINK, topic, coll, str(CHUNK)]
    client = MongoClient(stack.mongo_uri, serverSelectionTimeoutMS=5000)
    db = client[stack.mongo_db]
    postgres = ManagedProcess("postgres", stack)
    figures: dict = {}
    try:
        with (tmp_path / "sink-1.log").open("w") as log:
            first = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 120
            while db[coll].estimated_document_count() < N // 4:
                assert first.poll() is None, (tmp_path / "sink-1.log").read_text()[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.05)
            killed = time.monotonic()
            postgres.stop(timeout=10, sig=signal.SIGKILL)
            first.wait(180)
        failed_s = time.monotonic() - killed
        assert first.returncode != 0, "the sink run did not notice its database die"
        services.up(stack, log=lambda _: None)  # starts what is down: PostgreSQL
        restarted_s = time.monotonic() - killed
        cursor = load_offsets(db, coll, topic)
        stored_at_kill = db[coll].count_documents({})
        t0 = time.monotonic()
        second = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
        )
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        read_again = int(second.stdout.split("RECORDS_READ")[-1].split()[0])
        ids = [d["_id"] for d in db[coll].find({}, {"_id": 1})]
        figures.update(
            records=N,
            chunk=CHUNK,
            stored_when_killed=stored_at_kill,
            cursor_when_killed=sum(cursor.values()),
            resumed_run_read=read_again,
            stored_past_cursor_reread=stored_at_kill - sum(cursor.values()),
            mongodb_documents=len(ids),
            mongodb_duplicates=len(ids) - len(set(ids)),
            sink_failed_after_kill_s=round(failed_s, 1),
            database_back_after_kill_s=round(restarted_s, 1),
            resumed_run_s=round(time.monotonic() - t0, 1),
        )
        assert 0 < sum(cursor.values()) < N  # killed mid-run, with a cursor saved
        assert read_again == N - sum(cursor.values())  # resumed from the cursor, not from 0
        assert len(ids) == len(set(ids)) == N
        assert set(ids) == {a["alert_id"] for a in _alerts(N)}
        db.drop_collection(coll)
    finally:
        services.up(stack, log=lambda _: None)
        client.close()
    report(stack, "4-database-sigkill-during-sink", figures)
