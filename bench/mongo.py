"""Benchmark of the MongoDB layer: one day at the top rate (EVENT_RATE 1000/min = 1.44 M transaction
documents in the 24-hour store) on FerretDB's PostgreSQL backend (the project's) and on its SQLite
backend (the former one, as the baseline), in the same run.

    .venv/bin/python -m bench.mongo                    # 1.44 M documents on both backends
    .venv/bin/python -m bench.mongo --docs 200000      # a quicker run
    .venv/bin/python -m bench.mongo --skip-sqlite      # PostgreSQL only

For each backend, through the project's own code: insert throughput (darooghe.mongo_write.insert_new
from two writers, as the Spark load writes from two partitions), the hourly rollups
(transactions_store.hourly_rollups in Spark, written with replace_by_id), the indexes of the access
paths, p50/p95 of every documented dashboard query (transactions_store.dashboard_queries and the
charts' window_rollup reads), one retention pass removing the oldest hour (~60k documents), and
`mongo_summaries` (summaries.build_summaries) on a 35-day daily fact. The servers run under
$DAROOGHE_HOME/bench/mongo on their own ports and are stopped at the end. A SQLite query that
exceeds --sqlite-timeout seconds is reported as such (that backend decodes the whole collection for
every non-_id filter).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator

from darooghe import commission as cm
from darooghe.batch import summaries
from darooghe.batch import transactions_store as ts
from darooghe.charts import sources as src
from darooghe.config import Settings, load_settings
from darooghe.mongo_client import connect
from darooghe.mongo_write import BATCH_SIZE, insert_new, replace_by_id
from darooghe.schema import (
    COMMISSION_TYPES,
    CUSTOMER_TYPES,
    MERCHANT_CATEGORIES,
    PAYMENT_METHODS,
    STATUSES,
    format_timestamp,
)
from darooghe.services import ferretdb, postgres, stack
from darooghe.services.process import ManagedProcess

NOW = dt.datetime(2026, 3, 24, 12, 0, tzinfo=dt.UTC)  # fixed, so runs are comparable
MERCHANTS, CUSTOMERS = 50, 1000
SEGMENTS = ("Champions", "Loyal", "Potential", "New", "At risk", "Hibernating", "Lost")


def transaction_documents(n: int, seed: int = 1) -> Iterator[list[dict]]:
    """`n` documents shaped like the store's, spread evenly over the 24 hours before NOW."""
    rng = random.Random(seed)
    start = NOW - ts.RETENTION
    step = ts.RETENTION.total_seconds() / n
    batch = []
    for i in range(n):
        t = start + dt.timedelta(seconds=(i + 0.5) * step)
        t = t.replace(microsecond=t.microsecond - t.microsecond % 1000)
        amount = rng.randrange(10_000, 5_000_000)
        ctype = COMMISSION_TYPES[i % 3]
        fee, vat = cm.commission(ctype, amount), cm.vat(amount)
        status = STATUSES[0] if i % 20 else STATUSES[1 + (i // 20) % 2]
        method = PAYMENT_METHODS[i % 4]
        tid = f"{i:08x}-0000-4000-8000-{seed:012x}"
        batch.append(
            {
                "_id": tid,
                "transaction_id": tid,
                "timestamp": format_timestamp(t),
                "customer_id": f"cust_{rng.randrange(CUSTOMERS)}",
                "merchant_id": f"merch_{rng.randrange(MERCHANTS)}",
                "merchant_category": MERCHANT_CATEGORIES[i % len(MERCHANT_CATEGORIES)],
                "payment_method": method,
                "amount": amount,
                "location": {"lat": 35.6892 + rng.random() / 10, "lng": 51.389 + rng.random() / 10},
                "device_info": {"os": "Android", "app_version": "2.4.1", "device_model": "Pixel 9"}
                if method in ("online", "mobile")
                else {},
                "status": status,
                "commission_type": ctype,
                "commission_amount": fee,
                "vat_amount": vat,
                "total_amount": cm.total(amount, fee, vat),
                "customer_type": CUSTOMER_TYPES[i % len(CUSTOMER_TYPES)],
                "risk_level": 1 + i % 5,
                "failure_reason": None if status != "declined" else "insufficient_funds",
                "event_time": t,
                "event_date": t.strftime("%Y-%m-%d"),
                "event_hour": t.hour,
                "ingested_at": NOW,
            }
        )
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def daily_documents(days: int = 35) -> list[dict]:
    """A `transactions_daily` fact of `days` days: one document per (day, merchant, segment)."""
    rng = random.Random(3)
    docs = []
    for d in range(days):
        day = (NOW - dt.timedelta(days=d)).date()
        week = f"{day.isocalendar().year}-W{day.isocalendar().week:02d}"
        for m in range(MERCHANTS):
            for segment in SEGMENTS:
                n = rng.randrange(20, 200)
                approved = n - n // 20
                docs.append(
                    {
                        "_id": f"{day}|merch_{m}|{segment}",
                        "local_date": str(day),
                        "week": week,
                        "month": str(day)[:7],
                        "merchant_id": f"merch_{m}",
                        "merchant_category": MERCHANT_CATEGORIES[m % len(MERCHANT_CATEGORIES)],
                        "segment": segment,
                        "transaction_count": n,
                        "approved_count": approved,
                        "declined_count": n - approved,
                        "approved_amount": approved * 900_000,
                        "commission": approved * 15_000,
                    }
                )
    return docs


# --- the servers -------------------------------------------------------------------------------


@dataclasses.dataclass
class Backend:
    name: str
    uri: str
    postgres_url: str | None
    settings: Settings


def start_backends(base: Settings, ports: dict[str, int], with_sqlite: bool) -> list[Backend]:
    home = base.home / "bench" / "mongo"
    shutil.rmtree(home, ignore_errors=True)
    s = dataclasses.replace(
        base,
        home=home,
        mongo_port=ports["postgresql"],
        mongo_uri=f"mongodb://{base.mongo_host}:{ports['postgresql']}/",
        postgres_port=ports["postgres"],
    )
    stack._start_postgres(s, log=print)
    stack._start_ferretdb(s, log=print)
    backends = [Backend("postgresql", f"mongodb://{s.mongo_host}:{s.mongo_port}/", postgres.url(s), s)]
    if with_sqlite:
        lite = dataclasses.replace(s, mongo_port=ports["sqlite"], mongo_uri=f"mongodb://{s.mongo_host}:{ports['sqlite']}/")
        proc = ManagedProcess("ferretdb-sqlite", lite)
        proc.start(ferretdb.sqlite_command(lite, home / "sqlite", lite.mongo_port))
        stack._wait("ferretdb (sqlite)", lambda: stack.mongo_ping(lite), proc, timeout=30)
        backends.append(Backend("sqlite", f"mongodb://{lite.mongo_host}:{lite.mongo_port}/", None, lite))
    return backends


def stop_backends(backends: list[Backend]) -> None:
    import signal

    for b in backends:
        for name in ("ferretdb-sqlite", "ferretdb", "postgres"):
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            ManagedProcess(name, b.settings).stop(timeout=60, sig=sig)


# --- measurements ------------------------------------------------------------------------------


def insert_all(uri: str, n: int, writers: int = 2) -> float:
    """Documents per second through insert_new from `writers` threads (one client each)."""
    batches = iter(transaction_documents(n))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer() -> None:
        client = connect(uri, socketTimeoutMS=600_000)
        try:
            while True:
                with lock:
                    batch = next(batches, None)
                if batch is None:
                    return
                insert_new(client.bench, ts.COLLECTION, batch, batch_size=BATCH_SIZE)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            client.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for t in threads:
        t.start()
    done = 0
    while any(t.is_alive() for t in threads):
        time.sleep(10)
        done = client_count(uri)
        print(f"  insert: {done:,} / {n:,} documents, {done / (time.perf_counter() - t0):,.0f}/s", flush=True)
    if errors:
        raise errors[0]
    return n / (time.perf_counter() - t0)


def client_count(uri: str) -> int:
    with connect(uri) as client:
        return client.bench.command("collStats", ts.COLLECTION).get("count", 0)


def rollups_from(uri: str, n: int) -> tuple[float, int]:
    """Compute the hourly rollups of the generated day with the project's Spark code and write them."""
    import pandas as pd

    from darooghe.spark import spark_session

    columns = ["event_time", "customer_id", "merchant_id", "merchant_category", "status", "amount",
               "commission_type", "commission_amount"]
    frame = pd.concat(pd.DataFrame(b)[columns] for b in transaction_documents(n))
    spark = spark_session("bench-mongo", load_settings())
    t0 = time.perf_counter()
    hourly, activity = ts.hourly_rollups(spark.createDataFrame(frame))
    with connect(uri) as client:
        replace_by_id(client.bench[ts.HOURLY], hourly)
        replace_by_id(client.bench[ts.ACTIVITY], activity)
    return time.perf_counter() - t0, len(hourly) + len(activity)


def timed(fn: Callable[[], object], reps: int, timeout_s: float) -> list[float] | str:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:
            if "timed out" in str(exc):
                return f"> {timeout_s:.0f} s"
            raise
        out.append(time.perf_counter() - t0)
    return out


def query_figures(uri: str, reps: int, timeout_s: float) -> dict[str, list[float] | str]:
    client = connect(uri, socketTimeoutMS=int(timeout_s * 1000))
    db = client.bench
    figures: dict[str, list[float] | str] = {}
    for name, command in ts.dashboard_queries(NOW - dt.timedelta(minutes=30)).items():
        coll = db[command["find"]]

        def run(coll=coll, command=command):
            return list(coll.find(command["filter"], command.get("projection"), limit=command.get("limit", 0)).batch_size(10_000))

        figures[name] = timed(run, reps, timeout_s)
    figures["charts: window_rollup(transactions_hourly)"] = timed(
        lambda: src.window_rollup(db, ts.HOURLY, ["merchant_id", "transactions", "commission"]), reps, timeout_s
    )
    figures["charts: window_rollup(activity_hourly)"] = timed(
        lambda: src.window_rollup(db, ts.ACTIVITY, ["active_customers"]), reps, timeout_s
    )
    client.close()
    return figures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(figure: list[float] | str, q: float) -> str:
    return figure if isinstance(figure, str) else f"{percentile(figure, q) * 1000:,.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_440_000)
    ap.add_argument("--reps", type=int, default=20, help="repetitions of each query on PostgreSQL")
    ap.add_argument("--sqlite-reps", type=int, default=1)
    ap.add_argument("--sqlite-timeout", type=float, default=120.0)
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--postgres-port", type=int, default=15632)
    ap.add_argument("--mongo-port", type=int, default=27317)
    ap.add_argument("--sqlite-port", type=int, default=27318)
    args = ap.parse_args()
    ports = {"postgres": args.postgres_port, "postgresql": args.mongo_port, "sqlite": args.sqlite_port}
    backends = start_backends(load_settings(), ports, not args.skip_sqlite)
    results: dict[str, dict] = {}
    try:
        for b in backends:
            print(f"\n--- {b.name}: {args.docs:,} documents", flush=True)
            r = results[b.name] = {}
            with connect(b.uri) as client:
                client.drop_database("bench")
                ts.ensure_indexes(client.bench, b.postgres_url)  # the indexes exist while loading
            r["insert"] = insert_all(b.uri, args.docs)
            print(f"  insert: {r['insert']:,.0f} documents/s", flush=True)
            r["rollups_s"], r["rollup_docs"] = rollups_from(b.uri, args.docs)
            with connect(b.uri) as client:
                t0 = time.perf_counter()
                ts.ensure_indexes(client.bench, b.postgres_url)
                r["index_s"] = time.perf_counter() - t0
                plans = ts.explain_dashboard_queries(client.bench, NOW - dt.timedelta(minutes=30))
            r["plans"] = {k: v["uses_index"] or "scan" for k, v in plans.items()}
            reps = args.reps if b.name == "postgresql" else args.sqlite_reps
            timeout = 60.0 if b.name == "postgresql" else args.sqlite_timeout
            r["queries"] = query_figures(b.uri, reps, timeout)
            with connect(b.uri, socketTimeoutMS=int(max(600, timeout) * 1000)) as client:
                t0 = time.perf_counter()
                removed = ts.apply_retention(client.bench, NOW + ts.HOUR, log=lambda m: None)
                r["retention_s"], r["retention_docs"] = time.perf_counter() - t0, removed.removed
                client.bench.drop_collection(summaries.DAILY_COLLECTION)
                client.bench[summaries.DAILY_COLLECTION].insert_many(daily_documents())
                t0 = time.perf_counter()
                summaries.build_summaries(client.bench)
                r["summaries_s"] = time.perf_counter() - t0
            print(f"  {r}", flush=True)
    finally:
        stop_backends(backends)

    names = list(results)
    print(f"\n=== bench.mongo: {args.docs:,} documents ({args.docs / 1440:,.0f} events/min for 24 h)")
    print(f"{'figure':52} " + " ".join(f"{n:>18}" for n in names) + ("   ratio sqlite/pg" if len(names) == 2 else ""))

    def row(label: str, values: list[str], ratio: str = "") -> None:
        print(f"{label:52} " + " ".join(f"{v:>18}" for v in values) + (f"   {ratio}" if ratio else ""))

    def ratio(a, b) -> str:
        return f"{a / b:,.1f}x" if isinstance(a, float) and isinstance(b, float) and b else ""

    ins = [results[n]["insert"] for n in names]
    row("insert (documents/s, 2 writers)", [f"{v:,.0f}" for v in ins], ratio(ins[0], ins[-1]) if len(ins) == 2 else "")
    row("hourly rollups (Spark + write, s)", [f"{results[n]['rollups_s']:.1f}" for n in names])
    for q in results[names[0]]["queries"]:
        figs = [results[n]["queries"][q] for n in names]
        for label, quant in (("p50", 0.5), ("p95", 0.95)):
            med = [percentile(f, quant) if isinstance(f, list) else f for f in figs]
            r_ = ratio(med[-1], med[0]) if len(med) == 2 else ""
            row(f"{q} {label}", [fmt(f, quant) for f in figs], r_)
    ret = [results[n]["retention_s"] for n in names]
    row("retention of one hour (s)", [f"{v:.1f} ({results[n]['retention_docs']:,} docs)" for v, n in zip(ret, names)],
        ratio(ret[-1], ret[0]) if len(ret) == 2 else "")
    sm = [results[n]["summaries_s"] for n in names]
    row("mongo_summaries (s)", [f"{v:.1f}" for v in sm], ratio(sm[-1], sm[0]) if len(sm) == 2 else "")
    for n in names:
        print(f"plans on {n}: {results[n]['plans']}")


if __name__ == "__main__":
    main()
