"""A record dated into the future, but within the clock-skew allowance the validator lets pass,
must not switch event time off for everyone else: among normal traffic it changes no alert of
another transaction and no metric window that does not contain it.

The traffic: batch 1 runs up to its head H = 3 min; batch 2 brings events 70-80 s behind H
(within the 2-minute lateness) that complete a VELOCITY burst, plus more traffic. The outlier, in
batch 1, is dated H + the skew allowance.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from darooghe.fraud.profiles import write_profiles_file
from darooghe.fraud.txn import Txn
from darooghe.records import write_record_file
from darooghe.streaming.fraud_job import FraudJobConfig
from darooghe.streaming.metrics_job import MetricsJobConfig
from darooghe.streaming.publishers import side_output_path
from darooghe.streaming.sources import SourceConfig
from darooghe_tests.fraud_streams import (
    CATEGORIES,
    MIN,
    SEC,
    T0,
    TEHRAN,
    read_json_lines,
    record_of,
    run_file_fraud,
    run_file_metrics,
)

pytestmark = pytest.mark.spark
LATENESS_MS = 2 * MIN
HEAD_MS = 3 * MIN
METRICS = ("category_volume", "commission_ratio", "commission_by_type", "top_merchants")


def _t(tid: str, ms: int, customer: str) -> Txn:
    return Txn(tid, customer, T0 + ms, *TEHRAN, 100_000)


def _batches(outlier_ms: int | None) -> list[list[Txn]]:
    rng = random.Random(9)
    noise1 = [_t(f"n{i}", rng.randrange(HEAD_MS), f"cust_{10 + i % 7}") for i in range(40)]
    noise2 = [
        _t(f"m{i}", HEAD_MS + rng.randrange(2 * MIN), f"cust_{10 + i % 7}") for i in range(40)
    ]
    burst = [_t(f"v{i}", (60 + 10 * i) * SEC, "cust_1") for i in range(6)]  # 60 .. 110 s
    head = _t("head", HEAD_MS, "cust_2")
    first = [*noise1, *burst[:4], head]
    if outlier_ms is not None:
        first.append(_t("outlier", outlier_ms, "cust_99"))
    return [first, [*burst[4:], *noise2]]  # v4, v5: 70-80 s behind the head, not late


def _write(directory: Path, batches: list[list[Txn]]) -> Path:
    for i, batch in enumerate(batches):
        fields = [
            {"category": CATEGORIES[j % len(CATEGORIES)], "merchant": f"merch_{j % 4}"}
            for j in range(len(batch))
        ]
        write_record_file(
            [record_of(t, **f) for t, f in zip(batch, fields)], directory / f"batch-{i:04d}.jsonl"
        )
    return directory


def _fraud(spark, settings, tmp: Path, batches) -> set[tuple[str, str]]:
    profiles = tmp / "profiles.jsonl"
    write_profiles_file({}, profiles)
    cfg = FraudJobConfig(
        source=SourceConfig("file", _write(tmp / "in", batches)),
        workdir=tmp / "work",
        output=tmp / "alerts.jsonl",
        allowed_lateness_ms=LATENESS_MS,
        profiles=profiles,
        progress_file=tmp / "progress.json",
    )
    run_file_fraud(spark, cfg, settings)
    return {(a["rule"], a["transaction_id"]) for a in read_json_lines(cfg.output)}


def _metrics(spark, settings, tmp: Path, batches) -> dict[str, dict]:
    out = tmp / "metrics.jsonl"
    cfg = MetricsJobConfig(
        source=SourceConfig("file", _write(tmp / "in", batches)),
        workdir=tmp / "work",
        output=out,
        allowed_lateness_ms=LATENESS_MS,
        progress_file=tmp / "progress.json",
    )
    run_file_metrics(spark, cfg, settings)
    values = {}
    for name in METRICS:
        for v in read_json_lines(side_output_path(out, name)):
            values[v["metric_id"]] = v  # the last value per window: what an upserting sink keeps
    return values


def _contains(value: dict, ms: int) -> bool:
    from darooghe.fraud.txn import parse_event_ms

    return parse_event_ms(value["window_start"]) <= T0 + ms < parse_event_ms(value["window_end"])


def test_one_future_record_changes_no_alert_and_no_window(spark, settings, tmp_path):
    outlier_ms = HEAD_MS + settings.clock_skew_ms  # the furthest ahead the validator lets pass
    normal = _fraud(spark, settings, tmp_path / "fraud-normal", _batches(None))
    skewed = _fraud(spark, settings, tmp_path / "fraud-skewed", _batches(outlier_ms))
    assert ("VELOCITY", "v5") in normal
    assert {a for a in skewed if a[1] != "outlier"} == normal

    before = _metrics(spark, settings, tmp_path / "metrics-normal", _batches(None))
    after = _metrics(spark, settings, tmp_path / "metrics-skewed", _batches(outlier_ms))
    changed = sorted(
        (v["window_start"], k)
        for k, v in before.items()
        if after.get(k) != v and not _contains(v, outlier_ms)
    )
    assert not changed, f"windows changed by an outlier outside them: {changed[:5]}"
