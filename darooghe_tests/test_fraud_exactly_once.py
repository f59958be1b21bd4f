"""Fraud alerts and decisions exactly once in Kafka: one transaction per micro-batch, and a
replayed batch id (a driver killed after the sink's commit, before Spark's) commits nothing new."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from darooghe.fraud.alerts import alert_id
from darooghe.fraud.profiles import write_profiles_file
from darooghe.fraud.reference import reference_findings
from darooghe.kafka_io import consume_all, produce_records
from darooghe.services.process import stop_group
from darooghe.streaming.publishers import TransactionalTopicPublisher, transactional_id_for
from darooghe_tests.fraud_streams import (
    MIN,
    deliver_out_of_order,
    kafka_record_of,
    kill_after_batches,
    random_stream,
)

REPO = Path(__file__).resolve().parents[1]


def committed_values(topic, settings) -> list[str]:
    return [r.value for r in consume_all(topic, settings, idle_timeout=1)]


@pytest.mark.integration
def test_transactional_sink_skips_a_committed_batch_and_aborts_an_open_one(
    stack, unique_topic, tmp_path
):
    out, side = unique_topic("alerts", 2), unique_topic("decisions", 2)
    tid = transactional_id_for(tmp_path / f"work-{uuid.uuid4().hex[:6]}")
    first = TransactionalTopicPublisher(out, stack, tid, side_topics={"d": side}, epoch="e1")
    assert first.committed_batch == -1
    assert first.write(0, [("c1", "a0"), ("c2", "b0")], side={"d": [("c1", "d0")]}) == 2
    assert first.write(1, [("c1", "a1")]) == 1
    # A killed driver: a transaction left open (records flushed, never committed).
    first.producer.begin_transaction()
    first.producer.produce(out, key=b"c1", value=b"ghost")
    first.producer.flush(10)

    second = TransactionalTopicPublisher(out, stack, tid, side_topics={"d": side}, epoch="e1")
    assert second.committed_batch == 1
    assert second.write(1, [("c1", "a1")], side={"d": [("c1", "d1")]}) == 0  # the replay
    assert second.write(2, [("c2", "a2")]) == 1
    second.close()
    # The checkpoint deleted (--fresh): a new epoch, batch ids from 0 again, nothing skipped.
    fresh = TransactionalTopicPublisher(out, stack, tid, side_topics={"d": side}, epoch="e2")
    assert fresh.committed_batch == -1
    assert fresh.write(0, [("c3", "a0-fresh")]) == 1
    fresh.close()
    assert sorted(committed_values(out, stack)) == ["a0", "a0-fresh", "a1", "a2", "b0"]
    assert committed_values(side, stack) == ["d0"]
    # The group's committed positions are real: no lag on the partitions it wrote.
    from darooghe.monitoring import consumer_lags

    lags = [lag for group, topic, _, lag in consumer_lags(stack) if group == tid]
    assert lags and max(lags) == 0, lags
    first.close()


@pytest.mark.integration
@pytest.mark.spark
def test_driver_killed_mid_stream_alerts_exactly_once(stack, unique_topic, tmp_path):
    """SIGKILL the Kafka-mode job after a few micro-batches, delete Spark's last commit (the worst
    moment of a kill: the sink committed, Spark did not), restart: a read_committed consumer sees
    each alert once, and the set is the oracle's."""
    source = unique_topic("valid", 1)  # one partition: a capped batch never runs ahead in time
    alerts, decisions, late = (unique_topic(n, 2) for n in ("alerts", "decisions", "late"))
    rng = random.Random(13)
    txns = random_stream(rng, customers=8, n=600, span_ms=30 * MIN)
    arrivals = deliver_out_of_order(rng, txns, max_delay_ms=60_000)
    averages = {f"cust_{i}": 700_000.0 for i in range(5)}
    write_profiles_file(averages, tmp_path / "profiles.jsonl")
    produce_records(source, [kafka_record_of(t) for t in arrivals], stack, keep_partitions=False)
    expected = {alert_id(rule, tid) for rule, tid in reference_findings(txns, averages)}
    work = tmp_path / "work"
    cmd = [
        sys.executable, "-m", "darooghe.cli", "stream", "fraud", "--source", "kafka",
        "--topic", source, "--alerts-topic", alerts, "--decisions-topic", decisions,
        "--late-topic", late, "--checkpoint", str(work), "--profiles",
        str(tmp_path / "profiles.jsonl"), "--max-offsets-per-trigger", "40",
        "--trigger-seconds", "0.5",
    ]  # fmt: skip
    commits = work / "checkpoint" / "commits"
    done = kill_after_batches(cmd, work / "checkpoint", 5, tmp_path / "first.log")
    assert 5 <= len(done) < 15, f"kill did not land mid-stream ({done})\n" + (
        tmp_path / "first.log"
    ).read_text()[-3000:]
    before = Counter(json.loads(v)["alert_id"] for v in committed_values(alerts, stack))
    assert before and max(before.values()) == 1
    # Spark will re-run this batch; the sink has it.
    for name in (str(done[-1]), f".{done[-1]}.crc"):
        (commits / name).unlink(missing_ok=True)

    with (tmp_path / "second.log").open("w") as log:
        second = subprocess.Popen(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 420
            got: Counter = Counter()
            while time.monotonic() < deadline and second.poll() is None:
                got = Counter(json.loads(v)["alert_id"] for v in committed_values(alerts, stack))
                if set(got) >= expected:
                    break
                time.sleep(2)
            time.sleep(3)  # a duplicate would come with the next batches
        finally:
            stop_group(second)
    log_text = (tmp_path / "second.log").read_text()
    assert f"alerts committed up to batch {done[-1]}" in log_text, log_text[-3000:]
    got = Counter(json.loads(v)["alert_id"] for v in committed_values(alerts, stack))
    assert set(got) == expected, log_text[-3000:]
    assert max(got.values()) == 1, [a for a, n in got.items() if n > 1][:5]
    assert set(before) < expected
    decided = [json.loads(v) for v in committed_values(decisions, stack)]
    assert decided, "no decisions published"
    ids = {(d["transaction_id"], tuple(r["alert_id"] for r in d["rules"])) for d in decided}
    assert len(ids) == len(decided)  # no decision published twice
    assert {r["alert_id"] for d in decided for r in d["rules"]} <= expected
    assert all(d["decision"] in ("REVIEW", "BLOCK") for d in decided)
