"""The live metrics queries, replayed from record files, each against a pandas computation."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from darooghe.fraud.txn import Txn, iso_ms
from darooghe.records import write_record_file
from darooghe.streaming.metrics_job import (
    MetricsJobConfig,
    TopMerchantsRanker,
)
from darooghe.streaming.publishers import side_output_path
from darooghe.streaming.sources import SourceConfig
from darooghe_tests.fraud_streams import (
    CATEGORIES,
    MIN,
    SEC,
    T0,
    TEHRAN,
    chunks,
    read_json_lines,
    record_of,
    run_file_metrics,
)

pytestmark = pytest.mark.spark


def events(n: int = 400, seed: int = 3) -> list[tuple[Txn, dict]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ms = rng.randrange(12 * MIN)
        if i % 25 == 0:
            ms = ms // (20 * SEC) * 20 * SEC  # exactly on a window boundary
        t = Txn(
            f"tx{i:04d}",
            f"cust_{rng.randrange(30)}",
            T0 + ms,
            *TEHRAN,
            rng.choice([40_000, 300_000, 800_000, 2_000_000, 7_000_000]),
        )
        fields = {
            "merchant": f"merch_{rng.randrange(12)}",
            "category": rng.choice(CATEGORIES),
            "status": rng.choices(["approved", "declined", "pending"], [8, 1, 1])[0],
            "commission_type": rng.choice(["flat", "progressive", "tiered"]),
        }
        out.append((t, fields))
    return out


def frame(evts) -> pd.DataFrame:
    rows = []
    for t, f in evts:
        v = json.loads(record_of(t, **f).value)
        rows.append(
            {
                "ms": t.event_ms,
                "category": v["merchant_category"],
                "merchant": v["merchant_id"],
                "type": v["commission_type"],
                "status": v["status"],
                "amount": v["amount"],
                "commission": v["commission_amount"],
            }
        )
    return pd.DataFrame(rows)


def sliding(df: pd.DataFrame, size_ms: int, slide_ms: int) -> pd.DataFrame:
    """One row per (event, window containing it): windows [start, start + size) every slide."""
    parts = []
    for k in range(size_ms // slide_ms):
        start = (df["ms"] // slide_ms - k) * slide_ms
        parts.append(df.assign(start=start))
    out = pd.concat(parts)
    return out[(out["start"] <= out["ms"]) & (out["ms"] < out["start"] + size_ms)].assign(
        end=lambda d: d["start"] + size_ms
    )


def final_values(path: Path) -> dict[str, dict]:
    """Last value per metric_id: what an upserting consumer ends up with."""
    return {v["metric_id"]: v for v in read_json_lines(path)}


@pytest.fixture(scope="module")
def metrics_run(spark, settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    evts = events()
    # Delivery slightly out of order (up to 60 s, within the 2-minute lateness), four micro-batches.
    rng = random.Random(4)
    arrivals = sorted(evts, key=lambda e: e[0].event_ms + rng.randrange(60_001))
    for i, part in enumerate(chunks(arrivals, 4)):
        write_record_file([record_of(t, **f) for t, f in part], tmp / "in" / f"part-{i}.jsonl")
    out = tmp / "metrics.jsonl"
    cfg = MetricsJobConfig(
        source=SourceConfig("file", tmp / "in"),
        workdir=tmp / "work",
        output=out,
        progress_file=tmp / "progress.json",
    )
    run_file_metrics(spark, cfg, settings)
    values = {
        name: final_values(side_output_path(out, name))
        for name in ("category_volume", "commission_ratio", "commission_by_type", "top_merchants")
    }
    return frame(evts), values, tmp


def test_category_volume_equals_pandas(metrics_run):
    df, values, _ = metrics_run
    w = sliding(df, 60_000, 20_000)
    expected = w.groupby(["start", "end", "category"]).agg(
        n=("ms", "size"), amount=("amount", "sum")
    )
    got = {
        (v["window_start"], v["merchant_category"]): (
            v["transaction_count"],
            v["total_amount"],
            v["window_end"],
        )
        for v in values["category_volume"].values()
    }
    want = {
        (iso_ms(s), c): (int(r.n), int(r.amount), iso_ms(e)) for (s, e, c), r in expected.iterrows()
    }
    assert got == want


def test_commission_ratio_equals_pandas(metrics_run):
    df, values, _ = metrics_run
    w = sliding(df, 60_000, 20_000)
    approved = w["status"] == "approved"
    w = w.assign(c=w["commission"].where(approved, 0), a=w["amount"].where(approved, 0))
    expected = w.groupby(["start", "category"]).agg(c=("c", "sum"), a=("a", "sum"))
    got = {
        (v["window_start"], v["merchant_category"]): (
            v["total_commission"],
            v["total_amount"],
            v["commission_ratio"],
        )
        for v in values["commission_ratio"].values()
    }
    want = {
        (iso_ms(s), cat): (int(r.c), int(r.a), (r.c / r.a) if r.a else None)
        for (s, cat), r in expected.iterrows()
    }
    assert got.keys() == want.keys()
    for key, (c, a, ratio) in want.items():
        assert got[key][:2] == (c, a)
        assert got[key][2] == (pytest.approx(ratio) if ratio is not None else None)


def test_commission_by_type_equals_pandas(metrics_run):
    df, values, _ = metrics_run
    w = sliding(df[df["status"] == "approved"], 60_000, 60_000)
    expected = w.groupby(["start", "type"]).agg(c=("commission", "sum"), n=("ms", "size"))
    got = {
        (v["window_start"], v["commission_type"]): (v["total_commission"], v["transaction_count"])
        for v in values["commission_by_type"].values()
    }
    assert got == {(iso_ms(s), t): (int(r.c), int(r.n)) for (s, t), r in expected.iterrows()}


def test_top_merchants_equals_pandas(metrics_run):
    df, values, _ = metrics_run
    w = sliding(df[df["status"] == "approved"], 5 * MIN, 5 * MIN)
    totals = (
        w.groupby(["start", "merchant"])
        .agg(c=("commission", "sum"), n=("ms", "size"))
        .reset_index()
    )
    want = {}
    for start, group in totals.groupby("start"):
        ranked = group.sort_values(["c", "merchant"], ascending=[False, True]).head(5)
        for rank, r in enumerate(ranked.itertuples(), start=1):
            want[(iso_ms(start), rank)] = (r.merchant, int(r.c), int(r.n))
    got = {
        (v["window_start"], v["rank"]): (
            v["merchant_id"],
            v["total_commission"],
            v["transaction_count"],
        )
        for v in values["top_merchants"].values()
    }
    assert got == want


def test_metric_ids_deterministic_and_progress_reported(metrics_run):
    _, values, tmp = metrics_run
    for name, by_id in values.items():
        assert by_id, name
        for v in by_id.values():
            assert v["window_start"].endswith("Z") and v["window_end"].endswith("Z")
    progress = json.loads((tmp / "progress.json").read_text())
    assert set(progress["queries"]) == {
        "live_metrics.category_windows",
        "live_metrics.commission_by_type",
        "live_metrics.merchant_windows",
    }
    assert all(q["status"] == "stopped" for q in progress["queries"].values())


def test_top_merchant_ranking_is_idempotent(tmp_path):
    """Replaying a batch's absolute totals changes nothing; a later batch re-ranks its window."""
    from types import SimpleNamespace as Row

    ranker = TopMerchantsRanker(tmp_path, keep_ms=0)
    batch = [
        Row(
            window_start_ms=T0,
            window_end_ms=T0 + 5 * MIN,
            merchant_id=f"m{i}",
            total_commission=100 * i,
            transaction_count=i,
        )
        for i in range(1, 8)
    ]
    first = ranker.update(batch)
    assert ranker.update(batch) == first
    assert [v["merchant_id"] for v in first] == ["m7", "m6", "m5", "m4", "m3"]
    moved = ranker.update(
        [
            Row(
                window_start_ms=T0,
                window_end_ms=T0 + 5 * MIN,
                merchant_id="m1",
                total_commission=10_000,
                transaction_count=9,
            )
        ]
    )
    assert [v["merchant_id"] for v in moved] == ["m1", "m7", "m6", "m5", "m4"]
    assert [v["metric_id"] for v in moved] == [
        v["metric_id"] for v in first
    ]  # same ranks, upserted


def test_windows_before_the_cutoff_are_skipped_and_the_rest_are_whole(spark, settings, tmp_path):
    """A live-metrics work directory covers the windows from its cutoff on: none before it, and
    the first ones after it complete (events up to the longest window before it still count)."""
    evts = events()
    for i, part in enumerate(chunks(sorted(evts, key=lambda e: e[0].event_ms), 2)):
        write_record_file([record_of(t, **f) for t, f in part], tmp_path / "in" / f"part-{i}.jsonl")
    df = frame(evts)
    cutoff = int(df["ms"].median()) // 300_000 * 300_000 + 300_000
    out = tmp_path / "metrics.jsonl"
    cfg = MetricsJobConfig(
        source=SourceConfig("file", tmp_path / "in"), workdir=tmp_path / "work", output=out,
        progress_file=tmp_path / "progress.json", since_ms=cutoff + 123,
    )
    run_file_metrics(spark, cfg, settings)
    w = sliding(df, 60_000, 20_000)
    expected = w[w["start"] >= cutoff].groupby(["start", "category"]).agg(n=("ms", "size"))
    got = {
        (v["window_start"], v["merchant_category"]): v["transaction_count"]
        for v in final_values(side_output_path(out, "category_volume")).values()
    }
    assert got == {(iso_ms(s), c): int(r.n) for (s, c), r in expected.iterrows()}
    assert 0 < len(got) < len(w.groupby(["start", "category"]))
