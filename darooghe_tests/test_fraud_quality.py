"""Alert quality against labels and the oracle: precision, recall, FPR, agreement, wrong alerts."""

from __future__ import annotations

import pytest

from darooghe.fraud.quality import measure_quality
from darooghe.schema import AMOUNT_ANOMALY, GEO_IMPOSSIBLE, VELOCITY


def a(rule, tid, **evidence):
    return {"rule": rule, "transaction_id": tid, "evidence": evidence}


TXNS = [
    ("t1", "VELOCITY"),
    ("t2", "VELOCITY,AMOUNT_ANOMALY"),
    ("t3", None),
    ("t4", None),
    ("t5", "GEO_IMPOSSIBLE"),
    ("t6", None),
    ("t7", None),
    ("t8", None),
    ("t9", None),
    ("t10", None),
]


def test_precision_recall_fpr_and_oracle_agreement_per_rule():
    alerts = [
        a(VELOCITY, "t1"),
        a(VELOCITY, "t1"),  # a redelivery counts once
        a(VELOCITY, "t3", count_in_window=6),  # not labelled: a false positive
        a(AMOUNT_ANOMALY, "t2"),
        a(GEO_IMPOSSIBLE, "t5"),
    ]
    oracle = [(VELOCITY, "t1"), (VELOCITY, "t3"), (AMOUNT_ANOMALY, "t2"), (AMOUNT_ANOMALY, "t4")]
    report = measure_quality(TXNS, alerts, oracle)
    v, g, m = (report.rules[r] for r in (VELOCITY, GEO_IMPOSSIBLE, AMOUNT_ANOMALY))
    assert (v.alerts, v.labelled, v.true_positives, v.false_positives) == (2, 2, 1, 1)
    assert v.precision == 0.5 and v.recall == 0.5
    assert v.false_positive_rate == pytest.approx(1 / 8)  # 8 transactions not labelled VELOCITY
    assert v.oracle_agreement == 1.0  # the oracle fires exactly where the detector did
    assert g.precision == g.recall == 1.0 and g.false_positive_rate == 0.0
    assert g.oracle_agreement == 0.0  # one alert, no oracle finding
    assert m.oracle_agreement == 0.5  # {t2} of {t2, t4}
    assert report.transactions == 10 and report.wrong_total == 2
    first, second = report.wrong
    assert (first.kind, first.rule, first.transaction_id, first.label) == (
        "false positive",
        VELOCITY,
        "t3",
        "",
    )
    assert first.evidence == {"count_in_window": 6} and first.in_oracle is True
    assert (second.kind, second.transaction_id, second.in_oracle) == ("missed", "t2", False)
    text = "\n".join(report.lines())
    assert "VELOCITY        alerts=2      labelled=2      precision=50.0%" in text
    assert "false positive: VELOCITY on t3 (label none, oracle agrees) evidence" in text


def test_no_alerts_no_labels_and_unlabelled_rules():
    report = measure_quality(TXNS, [a(VELOCITY, "t9")], None, labelled_rules=[AMOUNT_ANOMALY])
    v, m = report.rules[VELOCITY], report.rules[AMOUNT_ANOMALY]
    assert v.precision is None and v.recall is None and v.oracle_agreement is None
    assert m.precision is None and m.recall == 0.0 and m.false_positive_rate == 0.0
    assert [w.rule for w in report.wrong] == [AMOUNT_ANOMALY]  # the miss; VELOCITY unlabelled
    assert "labelled=n/a" in report.lines()[1]
    assert measure_quality([], [], []).rules[VELOCITY].oracle_agreement == 1.0
