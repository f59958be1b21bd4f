"""Scenario builders shared by the fraud and streaming tests: transactions, record files, streams."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from darooghe.commission import commission, vat
from darooghe.fraud.geo import EARTH_RADIUS_KM
from darooghe.fraud.txn import Txn, iso_ms, parse_event_ms
from darooghe.records import Record, write_record_file

T0 = parse_event_ms("2026-03-23T10:00:00.000Z")
SEC = 1000
MIN = 60 * SEC
TEHRAN = (35.6892, 51.3890)
MASHHAD = (36.2605, 59.6168)
ISFAHAN = (32.6546, 51.6680)
SHIRAZ = (29.5918, 52.5837)
TABRIZ = (38.0800, 46.2919)
CITIES = [TEHRAN, MASHHAD, ISFAHAN, SHIRAZ, TABRIZ]
CATEGORIES = ("retail", "food_service", "entertainment", "transportation", "government")


def north_of(origin, km: float):
    """A point `km` due north of origin (along a meridian the haversine distance is exact)."""
    return (origin[0] + math.degrees(km / EARTH_RADIUS_KM), origin[1])


def txn(tid: str, ms: int, where=TEHRAN, amount: int = 100_000, customer: str = "cust_1") -> Txn:
    return Txn(tid, customer, T0 + ms, where[0], where[1], amount)


def value_of(
    t: Txn,
    *,
    merchant: str = "merch_1",
    category: str = "retail",
    status: str = "approved",
    commission_type: str = "flat",
    payment_method: str = "pos",
) -> dict:
    """A full valid-transaction value (darooghe.schema) around the fields the rules use."""
    fee = commission(commission_type, t.amount)
    tax = vat(t.amount)
    return {
        "transaction_id": t.transaction_id,
        "timestamp": iso_ms(t.event_ms),
        "customer_id": t.customer_id,
        "merchant_id": merchant,
        "merchant_category": category,
        "payment_method": payment_method,
        "amount": t.amount,
        "location": {"lat": t.lat, "lng": t.lng},
        "device_info": {},
        "status": status,
        "commission_type": commission_type,
        "commission_amount": fee,
        "vat_amount": tax,
        "total_amount": t.amount + fee + tax,
        "customer_type": "individual",
        "risk_level": 2,
        "failure_reason": "insufficient_funds" if status == "declined" else None,
    }


def record_of(t: Txn, **value_fields) -> Record:
    value = value_of(t, **value_fields)
    return Record(t.customer_id, json.dumps(value, separators=(",", ":")), t.event_ms)


def kafka_record_of(t: Txn, **value_fields) -> Record:
    """As record_of, with the record timestamp "now": T0 lies months back, and the broker would
    delete records that old at once (topic retention is by record timestamp). The job reads
    event time from the value."""
    import dataclasses
    import time

    return dataclasses.replace(record_of(t, **value_fields), timestamp=time.time_ns() // 1_000_000)


def write_batches(directory: Path, batches: list[list[Txn]]) -> list[Path]:
    """One record file per micro-batch, named so that name order is delivery order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, batch in enumerate(batches):
        path = directory / f"batch-{i:04d}.jsonl"
        write_record_file([record_of(t) for t in batch], path)
        paths.append(path)
    return paths


def read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def random_stream(rng: random.Random, customers: int, n: int, span_ms: int) -> list[Txn]:
    """Transactions with enough bursts, jumps between cities and big amounts to fire every rule."""
    out = []
    for i in range(n):
        home = CITIES[i % len(CITIES)]
        where = rng.choice(CITIES) if rng.random() < 0.1 else north_of(home, rng.uniform(0, 60))
        amount = rng.choice([50_000, 200_000, 900_000, 5_000_000, 30_000_000])
        ms = rng.randrange(span_ms)
        if rng.random() < 0.05:
            ms = ms // MIN * MIN  # whole minutes: simultaneous events and exact boundaries
        out.append(
            Txn(
                f"tx{i:05d}",
                f"cust_{rng.randrange(customers)}",
                T0 + ms,
                where[0],
                where[1],
                amount,
            )
        )
    return out


def deliver_out_of_order(rng: random.Random, txns: list[Txn], max_delay_ms: int) -> list[Txn]:
    """Arrival order: event time plus a random delay up to max_delay_ms, plus some redeliveries."""
    arrivals = [(t.event_ms + rng.randrange(max_delay_ms + 1), t) for t in txns]
    arrivals += [
        (a + rng.randrange(30_000), t) for a, t in rng.sample(arrivals, len(arrivals) // 20)
    ]
    arrivals.sort(key=lambda x: x[0])
    return [t for _, t in arrivals]


def chunks(items: list, n: int) -> list[list]:
    size = math.ceil(len(items) / n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_file_metrics(spark, cfg, settings) -> None:
    """Run the metrics queries of a file source to the end; any query's error fails the test."""
    from darooghe.streaming.metrics_job import start_metrics_queries  # Spark only when used

    run = start_metrics_queries(spark, cfg, settings, log=print)
    try:
        for q in run.queries:
            q.awaitTermination(600)
            assert q.exception() is None, q.exception()
    finally:
        for q in run.queries:
            if q.isActive:
                q.stop()
        run.close()


def run_file_fraud(spark, cfg, settings):
    """Run the fraud query of a file source to the end; its error fails the test. The run (its
    counters) is returned."""
    from darooghe.streaming.fraud_job import start_fraud_query  # Spark only when used

    run = start_fraud_query(spark, cfg, settings, log=print)
    try:
        run.query.awaitTermination(600)
        assert run.query.exception() is None, run.query.exception()
    finally:
        if run.query.isActive:
            run.query.stop()
        run.close()
    return run


REPO = Path(__file__).resolve().parents[1]


def committed_batches(checkpoint: Path) -> list[int]:
    """The micro-batch ids a streaming query's checkpoint has committed."""
    commits = checkpoint / "commits"
    return sorted(int(p.name) for p in commits.glob("[0-9]*")) if commits.exists() else []


def kill_after_batches(cmd: list[str], checkpoint: Path, batches: int, log: Path) -> list[int]:
    """Run the job `cmd` (its output to `log`) until its checkpoint has committed `batches`
    micro-batches (at most 300 s), then SIGKILL it, driver and JVM; the batches committed."""
    with log.open("w") as out:
        job = subprocess.Popen(
            cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline and job.poll() is None:
                if len(committed_batches(checkpoint)) >= batches:
                    break
                time.sleep(0.1)
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
    return committed_batches(checkpoint)
