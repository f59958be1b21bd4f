"""Rules as data in the running fraud job: a new rule-set version reaches the query without a
restart and judges exactly the transactions from its event time on (oracle-checked)."""

from __future__ import annotations

import json
import time

import pytest

from darooghe.fraud.alerts import alert_id
from darooghe.fraud.profiles import write_profiles_file
from darooghe.fraud.reference import reference_findings
from darooghe.fraud.rule_store import load_rule_history, publish_rule_set
from darooghe.fraud.ruleset import DEFAULT_HISTORY, DEFAULT_RULESET
from darooghe.kafka_io import consume_all, produce_records
from darooghe.schema import AMOUNT_ANOMALY, VELOCITY
from darooghe.streaming.fraud_job import FraudJobConfig, start_fraud_query
from darooghe.streaming.sources import SourceConfig
from darooghe_tests.fraud_streams import MIN, SEC, T0, kafka_record_of, txn

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def wait_for(predicate, run, timeout=240.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert run.query.exception() is None, run.query.exception()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_rule_change_applies_from_its_event_time_without_restart(
    spark, stack, tmp_path, unique_topic
):
    source, alerts_topic = unique_topic("valid", 2), unique_topic("alerts", 2)
    rules_topic = unique_topic("fraud-rules", 1)
    averages = {f"cust_{i}": 100_000.0 for i in range(1, 5)}
    write_profiles_file(averages, tmp_path / "profiles.jsonl")
    switch = T0 + 20 * MIN  # v2 applies from here, in the stream's future when published

    def round_of(start_ms: int, tag: str) -> list:
        """5x and 11x the average, and four payments in 90 s, on either side of `switch`."""
        out = []
        for k, at in enumerate((start_ms, switch - 1, switch, switch + MIN)):
            if at < start_ms:
                continue
            c = f"cust_{k + 1}"
            out.append(txn(f"{tag}-x5-{k}", at - T0, amount=500_000, customer=c))
            out.append(txn(f"{tag}-x11-{k}", at - T0 + 1, amount=1_100_000, customer=c))
            out += [
                txn(f"{tag}-v{k}-{i}", at - T0 - 90 * SEC + i * 30 * SEC, customer=c)
                for i in range(4)
            ]
        return out

    first = [t for t in round_of(T0 + 5 * MIN, "r1") if t.event_ms < T0 + 10 * MIN]
    second = [t for t in round_of(T0 + 15 * MIN, "r2") if t.event_ms >= T0 + 15 * MIN - 2 * MIN]
    cfg = FraudJobConfig(
        source=SourceConfig("kafka", topic=source),
        workdir=tmp_path / "work",
        alerts_topic=alerts_topic,
        profiles=tmp_path / "profiles.jsonl",
        rules_topic=rules_topic,
        trigger_seconds=1.0,
        progress_file=tmp_path / "progress.json",
    )
    run = start_fraud_query(spark, cfg, stack, log=print)
    try:
        produce_records(source, [kafka_record_of(t) for t in first], stack, keep_partitions=False)
        wait_for(
            lambda: run.recorder.entry("fraud_detection").get("input_rows_total", 0)
            >= len(first),
            run,
            what="the first round",
        )
        # While the query runs: from `switch` on, 4x is an anomaly and more than 3 in 2 min fire.
        v2 = DEFAULT_RULESET.changed(
            2, switch, amount_factor=4.0, velocity_max_count=3, comment="test: stricter"
        )
        history = publish_rule_set(stack, v2, rules_topic)
        assert load_rule_history(stack, rules_topic) == history
        time.sleep(2)  # the next micro-batch's check sees it
        produce_records(source, [kafka_record_of(t) for t in second], stack, keep_partitions=False)
        txns = first + second
        expected = {alert_id(r, tid) for r, tid in reference_findings(txns, averages, rules=history)}
        got: dict[str, dict] = {}

        def all_alerts():
            got.update(
                {
                    (v := json.loads(r.value))["alert_id"]: v
                    for r in consume_all(alerts_topic, stack, idle_timeout=1)
                }
            )
            return set(got) >= expected

        wait_for(all_alerts, run, what="the alerts of both rounds")
        time.sleep(3)  # nothing more may come
        all_alerts()
    finally:
        run.query.stop()
        run.close()
    assert set(got) == expected
    # The switch is exact: 5x fires from `switch` on, not one millisecond before.
    fired = {(v["rule"], v["transaction_id"]) for v in got.values()}
    assert (AMOUNT_ANOMALY, "r2-x5-2") in fired and (AMOUNT_ANOMALY, "r2-x5-1") not in fired
    assert (VELOCITY, "r2-v2-3") in fired and (VELOCITY, "r2-v1-3") not in fired
    for v in got.values():
        at = txns[[t.transaction_id for t in txns].index(v["transaction_id"])].event_ms
        assert v["rule_set_version"] == (2 if at >= switch else 1)
        assert v["risk_level"] == 2
    # Without the change the oracle agrees with neither of those.
    before = set(reference_findings(txns, averages, rules=DEFAULT_HISTORY))
    assert (AMOUNT_ANOMALY, "r2-x5-2") not in before
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["counters"]["rule_set_version"] == 2
