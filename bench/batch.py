"""Benchmark of the batch layer: the batch group's analytics on 1 M (default) or 10 M synthetic
transactions in the lake's Parquet layout, beside DuckDB computing the core aggregations
(commission by category, hour-of-day profile, customer profiles) on the same files in the same run.

    .venv/bin/python -m bench.batch            # 1 M transactions
    .venv/bin/python -m bench.batch --10m      # 1 M and 10 M
    .venv/bin/python -m bench.batch --sizes 200000

The synthetic lake is written with numpy/pyarrow (commission and VAT from darooghe.commission over
the distinct amounts), partitioned by event date like the real lake, under
$DAROOGHE_HOME/bench/batch/lake_<n> and reused by later runs. Spark runs every analysis the batch
assets run (darooghe.batch, up to the collected documents; MongoDB writes are not timed, they
depend on the database, not on Spark). DuckDB and Spark results of the core aggregations are
compared, so the ratio is between two correct answers. Peak memory is the resident set of this
process and its children (the Spark JVM) sampled every 50 ms during each phase.
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from darooghe import commission as cm
from darooghe.config import load_settings
from darooghe.schema import (
    COMMISSION_TYPES,
    CUSTOMER_TYPES,
    FAILURE_REASONS,
    MERCHANT_CATEGORIES,
    PAYMENT_METHODS,
)

DAY_MS = 86_400_000
END_MS = 1_774_310_400_000  # 2026-03-24T00:00:00Z: a fixed week, so runs are comparable
DAYS = 7
CUSTOMERS, MERCHANTS = 10_000, 500


# --- the synthetic lake -------------------------------------------------------------------------

TEHRAN_OFFSET_S = 12_600  # UTC+03:30 (no daylight saving since 2022)
_REGISTER: dict = {}


def generator_params():
    from darooghe.generator.params import GeneratorParams

    return GeneratorParams(merchant_count=MERCHANTS, customer_count=CUSTOMERS)


def bench_merchants() -> list[dict]:
    """The merchants of the bench's own synthetic history (it is generated here, not guessed)."""
    from darooghe.generator.engine import Engine

    return Engine(generator_params()).population.merchants()


def merchant_register() -> dict[str, np.ndarray]:
    """The generator's merchants for the bench's parameters, as arrays (index = merchant number - 1)."""
    if not _REGISTER:
        merchants = bench_merchants()
        _REGISTER["open"] = np.array([m["open_hour"] for m in merchants])
        _REGISTER["close"] = np.array([m["close_hour"] for m in merchants])
        _REGISTER["category"] = np.array(
            [MERCHANT_CATEGORIES.index(m["merchant_category"]) for m in merchants]
        )
    return _REGISTER


def synthetic_table(n: int, seed: int, offset: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    t_ms = np.sort(rng.integers(END_MS - DAYS * DAY_MS, END_MS, n))
    customer = rng.integers(1, CUSTOMERS + 1, n)
    method = rng.choice(len(PAYMENT_METHODS), n, p=[0.3, 0.35, 0.25, 0.1])
    # Merchants from the generator's register (500 merchants): in-person payments go to a
    # merchant open at that Tehran hour, except 1% (as the generator does), so the off-hours
    # analysis sees a realistic share.
    register = merchant_register()
    merchant = rng.integers(0, len(register["open"]), n)
    local_hour = ((t_ms // 1000 + TEHRAN_OFFSET_S) // 3600) % 24
    in_person = np.isin(method, [PAYMENT_METHODS.index(m) for m in ("pos", "nfc")]) & (
        rng.random(n) >= 0.01
    )
    for hour in range(24):
        rows = np.flatnonzero(in_person & (local_hour == hour))
        open_now = np.flatnonzero((register["open"] <= hour) & (hour < register["close"]))
        if len(rows) and len(open_now):
            merchant[rows] = rng.choice(open_now, len(rows))
    category = register["category"][merchant]
    merchant = merchant + 1
    amount = (np.round(np.exp(rng.normal(13.2, 0.9, n)) / 1000) * 1000).astype(np.int64)
    amount = np.maximum(amount, 1000)
    status = rng.choice(3, n, p=[0.93, 0.05, 0.02])
    ctype = rng.choice(len(COMMISSION_TYPES), n)
    # commission and VAT by the one definition, over the distinct (type, amount) pairs
    commission = np.empty(n, dtype=np.int64)
    for k, name in enumerate(COMMISSION_TYPES):
        rows = ctype == k
        uniq, inverse = np.unique(amount[rows], return_inverse=True)
        commission[rows] = np.array([cm.commission(name, int(a)) for a in uniq], dtype=np.int64)[
            inverse
        ]
    uniq, inverse = np.unique(amount, return_inverse=True)
    vat = np.array([cm.vat(int(a)) for a in uniq], dtype=np.int64)[inverse]
    lat = 35.6892 + rng.normal(0, 0.03, n)
    lng = 51.3890 + rng.normal(0, 0.03, n)
    with_device = np.isin(method, [PAYMENT_METHODS.index(m) for m in ("online", "mobile")])
    declined = status == 1

    ts = pa.array(t_ms.astype("datetime64[ms]"), type=pa.timestamp("ms", tz="UTC"))
    ids = np.arange(offset, offset + n, dtype=np.int64)
    hex_ids = pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 12, "0")
    transaction_id = pc.binary_join_element_wise("00000000-0000-4000-8000-", hex_ids, "")

    def names(values: tuple[str, ...], index: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(
            pa.array(index.astype(np.int32)), pa.array(values)
        ).cast(pa.string())

    def prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")

    os_name = pc.if_else(pa.array(with_device), "Android", pa.scalar(None, pa.string()))
    device = pa.StructArray.from_arrays(
        [
            os_name,
            pc.if_else(pa.array(with_device), "2.4.1", pa.scalar(None, pa.string())),
            pc.if_else(pa.array(with_device), "Pixel 9", pa.scalar(None, pa.string())),
        ],
        ["os", "app_version", "device_model"],
    )
    return pa.table(
        {
            "transaction_id": transaction_id,
            "timestamp": pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ"),
            "customer_id": prefixed("cust_", customer),
            "merchant_id": prefixed("merch_", merchant),
            "merchant_category": names(MERCHANT_CATEGORIES, category),
            "payment_method": names(PAYMENT_METHODS, method),
            "amount": amount,
            "location": pa.StructArray.from_arrays([pa.array(lat), pa.array(lng)], ["lat", "lng"]),
            "device_info": device,
            "status": names(("approved", "declined", "pending"), status),
            "commission_type": names(COMMISSION_TYPES, ctype),
            "commission_amount": commission,
            "vat_amount": vat,
            "total_amount": amount + vat + commission,
            "customer_type": names(CUSTOMER_TYPES, rng.choice(3, n, p=[0.85, 0.03, 0.12])),
            "risk_level": rng.integers(1, 6, n).astype(np.int32),
            "failure_reason": pc.if_else(
                pa.array(declined),
                names(FAILURE_REASONS, rng.integers(0, 4, n)),
                pa.scalar(None, pa.string()),
            ),
            "event_time": ts,
            "kafka_partition": (ids % 4).astype(np.int32),
            "kafka_offset": ids // 4,
            "kafka_timestamp": ts,
            "event_date": pc.strftime(ts, format="%Y-%m-%d"),
        }
    )


def write_lake(n: int, root: Path, chunk: int = 2_000_000) -> Path:
    """The synthetic lake of n rows (reused when already written)."""
    lake = root / f"lake_{n}"
    done = lake / "_COMPLETE"
    if done.exists():
        return lake
    shutil.rmtree(lake, ignore_errors=True)
    started = time.monotonic()
    for i, start in enumerate(range(0, n, chunk)):
        table = synthetic_table(min(chunk, n - start), seed=i, offset=start)
        ds.write_dataset(
            table,
            lake,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("event_date", pa.string())]), flavor="hive"),
            basename_template=f"part-{i:03d}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )
        print(f"  synthetic lake: {start + len(table):,} / {n:,} rows", flush=True)
    done.write_text(str(n))
    print(
        f"  synthetic lake of {n:,} rows written in {time.monotonic() - started:.1f} s: {lake}",
        flush=True,
    )
    return lake


# --- measuring -----------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident set (MB) of this process and its children while the block runs."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def _sample(self) -> int:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


@dataclass
class Timing:
    name: str
    seconds: float
    peak_mb: float
    rows: int


def timed(name: str, fn: Callable[[], object], results: list[Timing]):
    with PeakMemory() as mem:
        started = time.monotonic()
        out = fn()
        seconds = time.monotonic() - started
    rows = len(out) if hasattr(out, "__len__") else 0
    results.append(Timing(name, seconds, mem.peak_mb, rows))
    print(
        f"  {name:<34} {seconds:7.2f} s  peak {mem.peak_mb:7.0f} MB  ({rows} rows out)", flush=True
    )
    return out


# --- the workloads ---------------------------------------------------------------------------------


def spark_core(spark, lake: Path) -> dict[str, list]:
    """The three core aggregations as the batch assets compute them, collected."""
    from pyspark.sql import functions as F

    from darooghe.batch.columns import is_approved, with_local_time
    from darooghe.batch.commission_efficiency import commission_by_category
    from darooghe.batch.lake import read_lake

    frame = read_lake(spark, lake)
    by_category = commission_by_category(frame).collect()
    hourly = (
        with_local_time(frame)
        .groupBy(F.col("local_hour").alias("hour"))
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.when(is_approved(), F.col("amount")).otherwise(0)).alias("amount"),
        )
        .collect()
    )
    profiles = (
        frame.where(is_approved())
        .groupBy("customer_id")
        .agg(
            F.count(F.lit(1)).alias("txn_count"),
            F.avg("amount").alias("avg_amount"),
            F.sum("amount").alias("total"),
        )
        .collect()
    )
    return {"by_category": by_category, "hourly": hourly, "profiles": profiles}


def duckdb_core(lake: Path) -> dict[str, list]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = f"read_parquet('{lake}/*/*.parquet', hive_partitioning = true)"
    by_category = con.execute(
        f"""SELECT merchant_category, count(*) AS transaction_count, sum(amount) AS total_amount,
                   sum(commission_amount) AS total_commission,
                   sum(commission_amount) / count(*) AS avg_commission,
                   sum(commission_amount) / sum(amount) AS commission_ratio
            FROM {src} WHERE status = 'approved' GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    hourly = con.execute(
        f"""SELECT hour(timezone('Asia/Tehran', event_time)) AS hour, count(*) AS n,
                   sum(CASE WHEN status = 'approved' THEN amount ELSE 0 END) AS amount
            FROM {src} GROUP BY 1"""
    ).fetchall()
    profiles = con.execute(
        f"""SELECT customer_id, count(*) AS txn_count, avg(amount) AS avg_amount, sum(amount) AS total
            FROM {src} WHERE status = 'approved' GROUP BY 1"""
    ).fetchall()
    con.close()
    return {"by_category": by_category, "hourly": hourly, "profiles": profiles}


def same_answers(spark_out: dict, duck_out: dict) -> None:
    """Spark and DuckDB agree on every figure (exact counts and sums, averages to 1e-9)."""
    s_cat = {
        r.merchant_category: (r.transaction_count, r.total_amount, r.total_commission)
        for r in spark_out["by_category"]
    }
    d_cat = {r[0]: (r[1], int(r[2]), int(r[3])) for r in duck_out["by_category"]}
    assert s_cat == d_cat, f"commission by category differs: spark {s_cat} duckdb {d_cat}"
    s_hour = {r.hour: (r.n, r.amount) for r in spark_out["hourly"]}
    d_hour = {r[0]: (r[1], int(r[2])) for r in duck_out["hourly"]}
    assert s_hour == d_hour, "hour-of-day profile differs"
    s_prof = {r.customer_id: (r.txn_count, r.total) for r in spark_out["profiles"]}
    d_prof = {r[0]: (r[1], int(r[3])) for r in duck_out["profiles"]}
    assert s_prof == d_prof, "customer profiles differ"


def batch_group(spark, lake: Path, results: list[Timing]) -> None:
    """Every analysis of the batch assets, each to its collected documents."""
    from darooghe.batch import category_comparison as cc
    from darooghe.batch import commission_efficiency as ce
    from darooghe.batch import commission_models as cmod
    from darooghe.batch import customer_profiles as cp
    from darooghe.batch import customer_segments as cs
    from darooghe.batch import daily_activity as da
    from darooghe.batch import merchant_spikes as ms
    from darooghe.batch import off_hours as oh
    from darooghe.batch import temporal_patterns as tp
    from darooghe.batch.documents import collect_documents
    from darooghe.batch.lake import read_lake

    frame = read_lake(spark, lake)
    merchants = bench_merchants()

    def models():
        sim, recs = cmod.commission_recommendations(frame)
        out = collect_documents(
            sim, lambda d: f"{d['merchant_category']}|{d['structure']}"
        ) + collect_documents(recs, "merchant_category")
        sim.unpersist()
        return out

    def segments():
        rfm = cs.rfm(frame).cache()
        out = collect_documents(rfm.drop("reference_time"), "customer_id") + collect_documents(
            cs.segment_summary(rfm), "segment"
        )
        rfm.unpersist()
        return out

    steps = [
        (
            "commission_by_category",
            lambda: collect_documents(ce.commission_by_category(frame), ce.KEY),
        ),
        ("commission_models (+UDF check)", models),
        (
            "temporal_patterns (4 collections)",
            lambda: [
                *collect_documents(tp.hour_weekday_profile(frame), tp.hour_weekday_id),
                *collect_documents(tp.hourly_profile(frame), lambda d: str(d["hour"])),
                *collect_documents(tp.day_parts_by_category(frame), tp.day_part_id),
                *collect_documents(tp.spending_trend(frame), tp.trend_id),
            ],
        ),
        ("customer_profiles", lambda: collect_documents(cp.customer_profiles(frame), cp.KEY)),
        ("customer_segments (+summary)", segments),
        ("category_comparison", lambda: collect_documents(cc.category_comparison(frame), cc.KEY)),
        (
            "off_hours (2 collections)",
            lambda: (
                collect_documents(oh.off_hours_transactions(frame, merchants), "transaction_id")
                + collect_documents(oh.off_hours_by_merchant(frame, merchants), "merchant_id")
            ),
        ),
        ("merchant_spikes", lambda: collect_documents(ms.merchant_spikes(frame), ms.spike_id)),
        (
            "transactions_daily",
            lambda: collect_documents(da.daily_activity(frame, cs.rfm(frame)), da.daily_id),
        ),
    ]
    for name, fn in steps:
        timed(f"spark {name}", fn, results)


def run(n: int, root: Path, spark) -> dict:
    print(f"\n--- {n:,} transactions ---", flush=True)
    lake = write_lake(n, root)
    results: list[Timing] = []
    # one untimed pass of each engine first: JIT, class loading and the OS file cache are then
    # warm for both, and the timed passes compare the engines, not their start-up
    duckdb_core(lake)
    spark_core(spark, lake)
    duck = timed("duckdb core (3 aggregations)", lambda: duckdb_core(lake), results)
    spark_out = timed("spark core (3 aggregations)", lambda: spark_core(spark, lake), results)
    same_answers(spark_out, duck)
    print(
        "  spark and duckdb agree on commission by category, hour-of-day profile and customer profiles"
    )
    group: list[Timing] = []
    with PeakMemory() as mem:
        started = time.monotonic()
        batch_group(spark, lake, group)
        group_seconds = time.monotonic() - started
    results += group
    core = {t.name: t for t in results}
    ratio = (
        core["spark core (3 aggregations)"].seconds / core["duckdb core (3 aggregations)"].seconds
    )
    print(
        f"  => batch group: {group_seconds:.1f} s, peak {mem.peak_mb:.0f} MB; core aggregations spark/duckdb "
        f"= {ratio:.1f}x ({core['spark core (3 aggregations)'].seconds:.2f} s vs {core['duckdb core (3 aggregations)'].seconds:.2f} s)",
        flush=True,
    )
    return {
        "n": n,
        "group_seconds": group_seconds,
        "group_peak_mb": mem.peak_mb,
        "ratio": ratio,
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.batch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--10m", dest="ten_million", action="store_true", help="also run 10,000,000 transactions"
    )
    parser.add_argument(
        "--sizes", default="", help="comma-separated sizes instead (e.g. 200000,1000000)"
    )
    parser.add_argument("--driver-memory", default="4g", help="Spark driver memory (default 4g)")
    parser.add_argument(
        "--clean", action="store_true", help="delete the synthetic lakes afterwards"
    )
    args, _ = parser.parse_known_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] or (
        [1_000_000, 10_000_000] if args.ten_million else [1_000_000]
    )

    settings = load_settings()
    root = settings.home / "bench" / "batch"
    root.mkdir(parents=True, exist_ok=True)
    from darooghe.spark import spark_session

    started = time.monotonic()
    spark = spark_session(
        "darooghe-bench-batch", settings, **{"spark.driver.memory": args.driver_memory}
    )
    print(
        f"spark session ({settings.spark_master}, driver {args.driver_memory}) in {time.monotonic() - started:.1f} s"
    )
    summary = [run(n, root, spark) for n in sizes]
    spark.stop()
    print("\nsize          batch group   peak memory   core spark/duckdb")
    for s in summary:
        print(
            f"{s['n']:>11,}   {s['group_seconds']:9.1f} s   {s['group_peak_mb']:8.0f} MB   {s['ratio']:10.1f}x"
        )
    if args.clean:
        for n in sizes:
            shutil.rmtree(root / f"lake_{n}", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
