"""Decisions per alerted transaction: scored with the rule set, only REVIEW/BLOCK published, sunk
into MongoDB (latest per transaction) and charted."""

from __future__ import annotations

import json

import pytest

from darooghe.fraud.alerts import alert_id
from darooghe.fraud.decisions import decide_transactions
from darooghe.fraud.ruleset import BLOCK, DEFAULT_HISTORY, REVIEW
from darooghe.fraud.txn import iso_ms
from darooghe_tests.fraud_streams import MIN, T0


def alert(tid, rule, severity, ms=0, customer="cust_1", **extra) -> dict:
    return {
        "alert_id": alert_id(rule, tid),
        "rule": rule,
        "transaction_id": tid,
        "customer_id": customer,
        "event_time": iso_ms(T0 + ms),
        "detected_at": iso_ms(T0 + ms + 1000),
        "evidence": {},
        "severity": severity,
        **extra,
    }


def test_scores_group_alerts_by_transaction_and_keep_review_and_block():
    history = DEFAULT_HISTORY.with_version(
        DEFAULT_HISTORY.latest.changed(2, T0 + 10 * MIN, block_score=100)
    )
    alerts = [
        alert("t1", "VELOCITY", "medium", risk_level=2),  # 50 + 10 = 60: REVIEW
        alert("t2", "GEO_IMPOSSIBLE", "high", risk_level=1),  # 80 + 5: BLOCK under v1
        alert("t2", "VELOCITY", "low", risk_level=1),  # + 30 = 115
        alert("t3", "AMOUNT_ANOMALY", "high", ms=11 * MIN, risk_level=1),  # 85 < 100 under v2
        alert("t4", "VELOCITY", "low"),  # 30 + 5 (no risk_level: the lowest) = 35: APPROVE
        alert("t5", "VELOCITY", "high", ms=11 * MIN, rule_set_version=1),  # named version: BLOCK
    ]
    decided = {d["transaction_id"]: d for d in decide_transactions(alerts, history, T0)}
    assert set(decided) == {"t1", "t2", "t3", "t5"}
    assert (decided["t1"]["score"], decided["t1"]["decision"]) == (60, REVIEW)
    assert (decided["t2"]["score"], decided["t2"]["decision"]) == (115, BLOCK)
    assert [r["rule"] for r in decided["t2"]["rules"]] == ["GEO_IMPOSSIBLE", "VELOCITY"]
    assert decided["t2"]["rules"][0]["severity"] == "high"
    assert (decided["t3"]["decision"], decided["t3"]["rule_set_version"]) == (REVIEW, 2)
    assert (decided["t5"]["decision"], decided["t5"]["rule_set_version"]) == (BLOCK, 1)
    assert decided["t1"]["customer_id"] == "cust_1" and decided["t1"]["decided_at"] == iso_ms(T0)


def test_the_processor_decides_over_its_alerts_with_the_history_that_judged_them():
    from darooghe.fraud.columnar import Rows, judge
    from darooghe.streaming.fraud_processor import ALERT, DECISION, output_frame
    from darooghe_tests.fraud_streams import SEC, TABRIZ, txn

    history = DEFAULT_HISTORY.with_version(DEFAULT_HISTORY.latest.changed(2, T0, block_score=90))
    burst = [txn(f"v{i}", i * SEC, customer="cust_2") for i in range(6)]  # VELOCITY on v5
    rows = [txn("big", 0, amount=10**7), txn("far", MIN, where=TABRIZ), *burst]
    result = judge(Rows.empty(), Rows.from_txns(rows), T0, {"cust_1": 10_000.0}, history)
    frame = output_frame(result, T0, history, decided_ms=T0)
    alerts = [json.loads(v) for v in frame[frame.kind == ALERT].value]
    decisions = frame[frame.kind == DECISION]
    assert sorted(a["rule"] for a in alerts) == ["AMOUNT_ANOMALY", "GEO_IMPOSSIBLE", "VELOCITY"]
    # exactly decide_transactions over the batch's alerts, keyed and timed like them
    assert [json.loads(v) for v in decisions.value] == decide_transactions(alerts, history, T0)
    assert list(decisions.customer_id) == [json.loads(v)["customer_id"] for v in decisions.value]
    by_txn = {json.loads(v)["transaction_id"]: json.loads(v) for v in decisions.value}
    assert {t: d["rule_set_version"] for t, d in by_txn.items()} == {"big": 2, "far": 2}
    ms = dict(zip(decisions.transaction_id, decisions.event_ms, strict=True))
    assert ms == {"big": T0, "far": T0 + MIN}


@pytest.mark.integration
def test_decisions_sink_keeps_the_latest_per_transaction_and_the_chart_counts_them(
    stack, mongo_db, unique_topic
):
    import dagster as dg
    from confluent_kafka import Producer

    from darooghe.charts import catalog
    from darooghe_assets import constants as c
    from darooghe_assets.assets.kafka_to_mongo import FRAUD_DECISIONS, sink_asset
    from darooghe_assets.resources import KafkaResource, MongoResource

    topic = unique_topic("decisions", 2)
    values = decide_transactions(
        [
            alert("t1", "VELOCITY", "medium", risk_level=2),
            alert("t2", "GEO_IMPOSSIBLE", "high", ms=90 * MIN, customer="cust_2"),
        ],
        DEFAULT_HISTORY,
        T0 + 100 * MIN,
    )
    later = decide_transactions(
        [alert("t1", "VELOCITY", "medium", risk_level=2), alert("t1", "GEO_IMPOSSIBLE", "high")],
        DEFAULT_HISTORY,
        T0 + 101 * MIN,
    )
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    for v in [*values, *later, {"transaction_id": "t9", "decision": "MAYBE"}]:
        producer.produce(topic, key=b"k", value=json.dumps(v).encode(), partition=0)
    producer.flush(10)
    asset = sink_asset(
        FRAUD_DECISIONS,
        topic,
        dg.AssetKey("test_fraud_decisions"),
        c.FRAUD_DECISIONS_TOPIC,
        "fraud_decisions",
        dead_letter_topic=unique_topic("decisions.dlq"),
    )
    resources = {
        "kafka": KafkaResource(bootstrap_servers=stack.kafka_bootstrap),
        "mongo": MongoResource(uri=stack.mongo_uri, database=stack.mongo_db),
    }
    result = dg.materialize([asset], resources=resources)
    meta = result.asset_materializations_for_node(asset.op.name)[0].metadata
    assert meta["records_read"].value == 4 and meta["records_dead_lettered"].value == 1
    docs = {d["_id"]: d for d in mongo_db["fraud_decisions"].find()}
    assert set(docs) == {"t1", "t2"}
    assert (docs["t1"]["decision"], docs["t1"]["score"]) == (BLOCK, 140)  # the later one
    assert docs["t2"]["event_hour"] == 11 and docs["t2"]["decided_at"].minute == 40

    chart = catalog.chart_spec("fraud_decisions").build(mongo_db)
    assert not chart.empty and chart.rows_read == 2
    assert "Transactions decided: BLOCK 2" in chart.note()
