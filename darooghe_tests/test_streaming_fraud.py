"""The fraud detection query in Spark, replayed from record files (the very query the Kafka path runs).

Each test writes a directory of record files — one micro-batch each, in name order — runs the
streaming query with the availableNow trigger and compares the alerts with the reference oracle.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from darooghe.fraud.alerts import alert_id
from darooghe.fraud.profiles import write_profiles_file
from darooghe.fraud.reference import reference_findings
from darooghe.fraud.txn import Txn, iso_ms
from darooghe.records import read_records, write_record_file
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY
from darooghe.streaming.fraud_job import FraudJobConfig, start_fraud_query
from darooghe.streaming.sources import SourceConfig
from darooghe.topics import LABEL_HEADER
from darooghe.validation.clock import watermark_delay_ms
from darooghe_tests.fraud_streams import (
    MASHHAD,
    MIN,
    SEC,
    T0,
    TEHRAN,
    chunks,
    read_json_lines,
    run_file_fraud,
    txn,
    write_batches,
)

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[1]


def run_file_mode(
    spark, settings, tmp_path: Path, input_dir: Path, averages=None, lateness_ms=120_000
):
    """Run the query over every file of input_dir; returns (alert values, counters, workdir)."""
    profiles = tmp_path / "profiles.jsonl"
    write_profiles_file(averages or {}, profiles)
    out = tmp_path / "alerts.jsonl"
    cfg = FraudJobConfig(
        source=SourceConfig("file", input_dir),
        workdir=tmp_path / "work",
        output=out,
        allowed_lateness_ms=lateness_ms,
        profiles=profiles,
        progress_file=tmp_path / "progress.json",
    )
    run = run_file_fraud(spark, cfg, settings)
    return read_json_lines(out), run.counters, cfg.workdir


def expected_ids(findings) -> set[str]:
    return {alert_id(rule, tid) for rule, tid in findings}


def test_out_of_order_across_micro_batches(spark, settings, tmp_path):
    a = [txn(f"a{i}", i * 10 * SEC, customer="cust_1") for i in range(6)]  # 0, 10, ... 50 s
    g_earlier = txn("g_earlier", 60 * SEC, TEHRAN, customer="cust_2")
    g_later = txn("g_later", 90 * SEC, MASHHAD, customer="cust_2")
    s_a = txn("s_a", 45 * SEC, TEHRAN, customer="cust_3")
    s_b = txn("s_b", 45 * SEC, MASHHAD, customer="cust_3")
    x_equal = txn("x_equal", 20 * SEC, amount=1_000_000, customer="cust_4")
    x_over = txn("x_over", 25 * SEC, amount=1_000_001, customer="cust_4")
    no_history = txn("no_history", 30 * SEC, amount=50_000_000, customer="cust_5")
    # Six events spanning exactly two minutes: the first is outside the last one's window.
    e = [txn("e0", 0, customer="cust_6")] + [
        txn(f"e{i}", (115 + i) * SEC, customer="cust_6") for i in range(1, 6)
    ]
    clock = txn("clock", 10 * MIN, customer="cust_7")  # moves the watermark to 8 min
    too_late = txn("too_late", 55 * SEC, customer="cust_1")  # would be a 7th in a5's window
    # Behind the watermark too, but 30 x cust_4's average: the amount rule needs no window.
    late_big = txn("late_big", 50 * SEC, amount=3_000_000, customer="cust_4")
    batches = [
        [a[0], a[1], a[2], a[4], a[5], g_later, s_b, x_equal, e[0], e[1]],
        [
            a[3],
            a[1],
            s_a,
            x_over,
            no_history,
            e[2],
            e[3],
        ],  # a3 completes a5's burst; a1 redelivered
        [g_earlier, e[4], e[5]],  # the earlier of the pair arrives last: the alert goes on g_later
        [clock],
        [too_late, late_big],
    ]
    write_batches(tmp_path / "in", batches)
    averages = {"cust_4": 100_000.0}

    alerts, counters, _ = run_file_mode(spark, settings, tmp_path, tmp_path / "in", averages)

    late_txns = [too_late, late_big]
    accepted = [t for batch in batches for t in batch if t not in late_txns]
    findings = set(reference_findings(accepted, averages, late=late_txns))
    assert findings == {
        (VELOCITY, "a5"),
        (GEO_IMPOSSIBLE, "g_later"),
        (GEO_IMPOSSIBLE, "s_b"),
        (AMOUNT_ANOMALY, "x_over"),
        (AMOUNT_ANOMALY, "late_big"),
    }
    assert sorted(v["alert_id"] for v in alerts) == sorted(expected_ids(findings))
    by_txn = {(v["rule"], v["transaction_id"]): v for v in alerts}
    assert by_txn[(VELOCITY, "a5")]["evidence"]["count"] == 6
    assert by_txn[(GEO_IMPOSSIBLE, "g_later")]["evidence"]["other_transaction_id"] == "g_earlier"
    assert by_txn[(AMOUNT_ANOMALY, "x_over")]["customer_id"] == "cust_4"
    late_file = tmp_path / "alerts.late_transactions.jsonl"  # beside the alerts
    late = {r["transaction_id"]: r for r in read_json_lines(late_file)}
    assert sorted(late) == ["late_big", "too_late"]
    watermark = T0 + 10 * MIN - watermark_delay_ms(120_000, settings)  # from the clock event
    for t in late_txns:
        r = late[t.transaction_id]
        assert r["watermark"] == iso_ms(watermark) and r["batch_id"] == 4
        assert r["behind_watermark_ms"] == watermark - t.event_ms
        assert (r["customer_id"], r["amount"]) == (t.customer_id, t.amount)
    assert late["late_big"]["alerts"] == [
        {"rule": AMOUNT_ANOMALY, "alert_id": alert_id(AMOUNT_ANOMALY, "late_big")}
    ]
    assert late["too_late"]["judged_by"] == []  # cust_1 has no average
    assert counters.late == 2 and counters.duplicates == 1 and counters.batches == 5
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["queries"]["fraud_detection"]["status"] == "stopped"
    assert progress["counters"]["alerts"] == 5 and progress["counters"]["late_rows"] == 2


def generated_day(tmp_path: Path) -> list:
    """A day from the project's generator (fraud injected, no invalid events), as records."""
    out = tmp_path / "generated.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "darooghe.cli",
            "generate",
            "--mode",
            "history",
            "--days",
            "1",
            "--end",
            "2026-03-23T00:00:00Z",
            "--event-rate",
            "10",
            "--customer-count",
            "100",
            "--merchant-count",
            "10",
            "--fraud-rate",
            "0.1",
            "--err-amount-rate",
            "0",
            "--err-time-rate",
            "0",
            "--err-device-rate",
            "0",
            "--err-schema-rate",
            "0",
            "--seed",
            "7",
            "--sink",
            "file",
            "--output",
            str(out),
            "--quiet",
        ],
        check=True,
        cwd=REPO,
        timeout=120,
    )
    return list(read_records(out))


def test_generated_stream_out_of_order_equals_reference_and_labels(spark, settings, tmp_path):
    records = generated_day(tmp_path)
    txns = {}
    for r in records:
        t = Txn.from_value(r.value)
        txns[t.transaction_id] = (t, r)
    approved = {}
    for r in records:
        v = json.loads(r.value)
        if v["status"] == "approved":
            approved.setdefault(v["customer_id"], []).append(v["amount"])
    averages = {c: sum(a) / len(a) for c, a in approved.items()}

    # Delivery: each record delayed by up to 90 s (within the 2-minute lateness), 3% redelivered.
    rng = random.Random(5)
    arrivals = [(r.timestamp + rng.randrange(90_001), r) for r in records]
    arrivals += [
        (a + rng.randrange(20_000), r) for a, r in rng.sample(arrivals, len(arrivals) * 3 // 100)
    ]
    arrivals.sort(key=lambda x: x[0])
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    for i, part in enumerate(chunks([r for _, r in arrivals], 8)):
        write_record_file(part, input_dir / f"part-{i:03d}.jsonl")

    alerts, counters, _ = run_file_mode(spark, settings, tmp_path, input_dir, averages)

    findings = set(reference_findings([t for t, _ in txns.values()], averages))
    got = [v["alert_id"] for v in alerts]
    assert len(got) == len(set(got))
    assert set(got) == expected_ids(findings)
    assert counters.late == 0 and counters.duplicates == len(arrivals) - len(records)

    # The generator's ground truth: VELOCITY and GEO_IMPOSSIBLE labels use the same exact rules.
    labelled = {
        (rule, tid)
        for tid, (_, r) in txns.items()
        for rule in (r.headers.get(LABEL_HEADER) or "").split(",")
        if rule
    }
    detected = {(v["rule"], v["transaction_id"]) for v in alerts}
    for rule in (VELOCITY, GEO_IMPOSSIBLE):
        truth = {f for f in labelled if f[0] == rule}
        found = {f for f in detected if f[0] == rule}
        assert truth and found == truth, rule
    spikes = {f for f in labelled if f[0] == AMOUNT_ANOMALY}
    recall = len(spikes & detected) / len(spikes)
    print(f"AMOUNT_ANOMALY recall against the generator's labels (running averages): {recall:.3f}")
    assert recall > 0.5


def test_killed_mid_stream_resumes_from_checkpoint(settings, tmp_path):
    """SIGKILL the job (driver and JVM) after a few micro-batches, run it again: the distinct
    alert ids equal the reference set (the sink is at-least-once, ids make duplicates harmless)."""
    from darooghe_tests.fraud_streams import (
        deliver_out_of_order,
        kill_after_batches,
        random_stream,
    )

    rng = random.Random(21)
    txns = random_stream(rng, customers=8, n=600, span_ms=30 * MIN)
    arrivals = deliver_out_of_order(rng, txns, max_delay_ms=60_000)
    write_batches(tmp_path / "in", chunks(arrivals, 14))
    averages = {f"cust_{i}": 700_000.0 for i in range(5)}
    write_profiles_file(averages, tmp_path / "profiles.jsonl")
    out, work = tmp_path / "alerts.jsonl", tmp_path / "work"
    cmd = [
        sys.executable,
        "-m",
        "darooghe.cli",
        "stream",
        "fraud",
        "--source",
        "file",
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(out),
        "--checkpoint",
        str(work),
        "--profiles",
        str(tmp_path / "profiles.jsonl"),
    ]
    killed_after = len(kill_after_batches(cmd, work / "checkpoint", 4, tmp_path / "first.log"))
    assert 4 <= killed_after < 14, (
        f"kill did not land mid-stream ({killed_after} batches committed)"
    )
    before = {v["alert_id"] for v in read_json_lines(out)}

    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    alerts = read_json_lines(out)
    expected = expected_ids(reference_findings(txns, averages))
    assert {v["alert_id"] for v in alerts} == expected
    assert before < expected  # the first run got part of the way, the second finished the rest
    offsets = work / "checkpoint" / "offsets"
    last = max(offsets.glob("[0-9]*"), key=lambda p: int(p.name))
    assert "batch-0013.jsonl" in last.read_text()  # every file read (plus a watermark-only batch)


@pytest.mark.integration
def test_kafka_path_end_to_end_read_committed(spark, stack, tmp_path, unique_topic):
    """Kafka in, Kafka out: out-of-order delivery in two rounds, records of an aborted transaction
    never judged, alerts keyed by customer_id."""
    import time
    import uuid

    from confluent_kafka import Producer

    from darooghe.kafka_io import consume_all, produce_records, producer_config
    from darooghe_tests.fraud_streams import deliver_out_of_order, kafka_record_of, random_stream

    source_topic, alerts_topic = unique_topic("valid", 4), unique_topic("alerts", 2)
    rng = random.Random(8)
    txns = random_stream(rng, customers=6, n=240, span_ms=20 * MIN)
    arrivals = deliver_out_of_order(rng, txns, max_delay_ms=60_000)
    averages = {f"cust_{i}": 600_000.0 for i in range(6)}
    write_profiles_file(averages, tmp_path / "profiles.jsonl")
    half = len(arrivals) // 2
    produce_records(
        source_topic, [kafka_record_of(t) for t in arrivals[:half]], stack, keep_partitions=False
    )

    aborted = Producer(
        producer_config(stack, **{"transactional.id": f"test-{uuid.uuid4().hex[:8]}"})
    )
    aborted.init_transactions(10)
    aborted.begin_transaction()
    ghost = txn("ghost", 5 * MIN, amount=10**10, customer="cust_0")
    rec = kafka_record_of(ghost)
    aborted.produce(
        source_topic, key=rec.key.encode(), value=rec.value.encode(), timestamp=rec.timestamp
    )
    aborted.flush(10)
    aborted.abort_transaction(10)

    cfg = FraudJobConfig(
        source=SourceConfig("kafka", topic=source_topic),
        workdir=tmp_path / "work",
        alerts_topic=alerts_topic,
        profiles=tmp_path / "profiles.jsonl",
        trigger_seconds=1.0,
        progress_file=tmp_path / "progress.json",
    )
    expected = expected_ids(reference_findings(txns, averages))
    run = start_fraud_query(spark, cfg, stack, log=print)
    try:
        deadline = time.monotonic() + 180
        while run.recorder.entry("fraud_detection").get("input_rows_total", 0) < half:
            assert time.monotonic() < deadline and run.query.exception() is None, (
                run.query.exception()
            )
            time.sleep(0.5)
        produce_records(
            source_topic,
            [kafka_record_of(t) for t in arrivals[half:]],
            stack,
            keep_partitions=False,
        )
        got: dict[str, object] = {}
        while set(got) != expected and time.monotonic() < deadline:
            assert run.query.exception() is None, run.query.exception()
            time.sleep(2)
            got = {
                json.loads(r.value)["alert_id"]: r
                for r in consume_all(alerts_topic, stack, idle_timeout=1)
            }
    finally:
        run.query.stop()
        run.close()
    assert set(got) == expected
    assert all(r.key == json.loads(r.value)["customer_id"] for r in got.values())
    assert alert_id(AMOUNT_ANOMALY, "ghost") not in got
    progress = json.loads((tmp_path / "progress.json").read_text())["queries"]["fraud_detection"]
    assert progress["last_progress"]["state_rows"] >= 1


@pytest.mark.integration
def test_profiles_refreshed_from_mongodb_without_restart(
    spark, stack, mongo_db, tmp_path, unique_topic
):
    """Re-materialised customer_profiles reach the running query at its next micro-batch."""
    import time
    from datetime import UTC, datetime

    from darooghe.kafka_io import consume_all, produce_records
    from darooghe_tests.fraud_streams import kafka_record_of

    source_topic, alerts_topic = unique_topic("valid", 1), unique_topic("alerts", 1)
    profiles = mongo_db["customer_profiles"]
    profiles.insert_one(
        {
            "_id": "cust_1",
            "customer_id": "cust_1",
            "avg_amount": 1_000_000.0,
            "updated_at": datetime.now(UTC),
        }
    )
    cfg = FraudJobConfig(
        source=SourceConfig("kafka", topic=source_topic),
        workdir=tmp_path / "work",
        alerts_topic=alerts_topic,
        profiles_refresh_s=0,
        trigger_seconds=0.5,
        progress_file=tmp_path / "progress.json",
    )
    run = start_fraud_query(spark, cfg, stack, log=print)
    try:

        def processed(n):
            deadline = time.monotonic() + 120
            while run.recorder.entry("fraud_detection").get("input_rows_total", 0) < n:
                assert time.monotonic() < deadline and run.query.exception() is None, (
                    run.query.exception()
                )
                time.sleep(0.3)

        produce_records(source_topic, [kafka_record_of(txn("before", 0, amount=5_000_000))], stack)
        processed(1)  # 5 x the average: no alert
        profiles.update_one(
            {"_id": "cust_1"}, {"$set": {"avg_amount": 100_000.0, "updated_at": datetime.now(UTC)}}
        )
        produce_records(
            source_topic, [kafka_record_of(txn("after", 10 * SEC, amount=5_000_000))], stack
        )
        processed(2)  # 50 x the new average
        deadline = time.monotonic() + 60
        got = []
        while not got and time.monotonic() < deadline:
            got = [json.loads(r.value) for r in consume_all(alerts_topic, stack, idle_timeout=1)]
            time.sleep(0.5)
    finally:
        run.query.stop()
        run.close()
    assert [(v["rule"], v["transaction_id"]) for v in got] == [(AMOUNT_ANOMALY, "after")]
    assert got[0]["evidence"]["historical_average"] == 100_000.0


@pytest.mark.integration
def test_kafka_late_transactions_reach_their_topic_once_and_are_judged_by_amount(
    spark, stack, tmp_path, unique_topic
):
    """Kafka in and out: events beyond the allowed lateness are published once each on the late
    topic with the watermark and their lag; the windowed rules do not judge them (the patterns they
    would complete raise nothing), AMOUNT_ANOMALY does (its alert is on the alerts topic)."""
    import time
    from collections import Counter

    from darooghe.fraud.txn import parse_event_ms
    from darooghe.kafka_io import consume_all, produce_records
    from darooghe_tests.fraud_streams import kafka_record_of

    source_topic = unique_topic("valid", 2)
    alerts_topic, late_topic = unique_topic("alerts", 1), unique_topic("late", 2)
    averages = {"cust_1": 10_000.0, "cust_2": 10_000.0}
    write_profiles_file(averages, tmp_path / "profiles.jsonl")
    on_time = [txn(f"v{i}", i * SEC, customer="cust_1") for i in range(5)]  # a sixth would fire
    on_time += [txn("g0", 0, TEHRAN, customer="cust_2"), txn("clock", 30 * MIN, customer="cust_3")]
    late = [
        txn("late_burst", 5 * SEC, customer="cust_1"),  # on time, the sixth in 2 min: VELOCITY
        txn("late_far", 30 * SEC, MASHHAD, customer="cust_2"),  # 740 km in 30 s from g0: GEO
        txn("late_big", 10 * SEC, amount=1_000_000, customer="cust_1"),  # 100 x the average
        txn("late_no_history", 0, amount=10**9, customer="cust_9"),  # no average: not judged
    ]
    lateness_ms = 120_000
    cfg = FraudJobConfig(
        source=SourceConfig("kafka", topic=source_topic),
        workdir=tmp_path / "work",
        alerts_topic=alerts_topic,
        late_topic=late_topic,
        allowed_lateness_ms=lateness_ms,
        profiles=tmp_path / "profiles.jsonl",
        trigger_seconds=0.5,
        progress_file=tmp_path / "progress.json",
    )
    run = start_fraud_query(spark, cfg, stack, log=print)
    try:
        deadline = time.monotonic() + 180

        def processed(n):
            while run.recorder.entry("fraud_detection").get("input_rows_total", 0) < n:
                assert time.monotonic() < deadline and run.query.exception() is None, (
                    run.query.exception()
                )
                time.sleep(0.3)

        produce_records(
            source_topic, [kafka_record_of(t) for t in on_time], stack, keep_partitions=False
        )
        processed(len(on_time))  # the next batch's watermark: clock - lateness - clock skew
        produce_records(
            source_topic, [kafka_record_of(t) for t in late], stack, keep_partitions=False
        )
        published = []
        while len(published) < len(late):
            assert time.monotonic() < deadline and run.query.exception() is None, (
                run.query.exception() or f"{len(published)} late records after 180 s"
            )
            time.sleep(1)
            published = list(consume_all(late_topic, stack, idle_timeout=1))
        time.sleep(2)  # anything published twice would be there by now
        published = list(consume_all(late_topic, stack, idle_timeout=1))
        alerts = [json.loads(r.value) for r in consume_all(alerts_topic, stack, idle_timeout=1)]
    finally:
        run.query.stop()
        run.close()

    values = {json.loads(r.value)["transaction_id"]: json.loads(r.value) for r in published}
    assert Counter(json.loads(r.value)["transaction_id"] for r in published) == {
        t.transaction_id: 1 for t in late
    }
    assert all(r.key == json.loads(r.value)["customer_id"] for r in published)
    watermark = T0 + 30 * MIN - watermark_delay_ms(lateness_ms, stack)
    for t in late:
        v = values[t.transaction_id]
        assert parse_event_ms(v["watermark"]) == watermark, v
        assert v["behind_watermark_ms"] == watermark - t.event_ms > 0
        assert (v["event_time"], v["amount"]) == (iso_ms(t.event_ms), t.amount)
    assert values["late_big"]["alerts"] == [
        {"rule": AMOUNT_ANOMALY, "alert_id": alert_id(AMOUNT_ANOMALY, "late_big")}
    ]
    assert values["late_burst"]["not_judged_by"] == [VELOCITY, GEO_IMPOSSIBLE]
    assert values["late_no_history"]["judged_by"] == []

    expected = set(reference_findings(on_time, averages, late=late))
    assert expected == {(AMOUNT_ANOMALY, "late_big")}
    assert {(a["rule"], a["transaction_id"]) for a in alerts} == expected
    assert len(alerts) == 1 and alerts[0]["evidence"]["ratio"] == 100
    assert run.counters.late == len(late)
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["counters"]["late_rows"] == len(late)
