"""The fraud job's state worker without Spark: what one micro-batch costs in Python.

    .venv/bin/python -m bench.fraud_judge [--batches 20] [--batch 25000] [--customers 50000]

Replays bench.streaming's sustained workload (--customers customers, 1,000 events/s of event time,
2 % amount spikes, micro-batches of --batch events, the job's 6 customer buckets) through what the
stateful processor runs per bucket: the new rows as they arrive (`decode_rows` of the packed
blob), `columnar.judge` against the held rows, the encoding of each changed state slice and the
output rows (`output_frame`: every alert's JSON and the decisions). The held rows fill the 5-minute
horizon after 12 batches of 25,000; the figures are the medians of the batches after that.
Baseline in the same run: the floor of moving the batch's rows through state (decode the new
rows, encode the held rows of the changed slices) with no rule evaluated. Single process, one
core: the job runs one such worker per state partition.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid

import numpy as np

from darooghe.fraud.columnar import Rows, decode_rows, encode_rows, judge
from darooghe.fraud.ruleset import DEFAULT_HISTORY
from darooghe.streaming.fraud_processor import BUCKETS, output_frame, slice_of

AVERAGE = 200_000.0
T0 = 1_796_000_000_000


def make_batch(k: int, size: int, customers: int, rng: np.random.Generator, ids: random.Random):
    """Batch k: event times k*size .. (k+1)*size - 1 ms after T0 (1,000 events/s), random
    customers, 2 % amount spikes (AMOUNT_ANOMALY), locations near Tehran."""
    who = rng.integers(0, customers, size)
    amount = np.where(rng.random(size) < 0.02, 5_000_000, rng.integers(50, 300, size) * 1000)
    rows = Rows.build(
        np.array([f"cust_{i}" for i in who.tolist()], dtype=object),
        np.array([str(uuid.UUID(int=ids.getrandbits(128), version=4)) for _ in range(size)]),
        T0 + k * size + np.arange(size),
        35.7 + rng.normal(0, 0.05, size),
        51.4 + rng.normal(0, 0.05, size),
        amount,
        np.ones(size, np.int8),
    )
    return [encode_rows(rows.take(who % BUCKETS == b)) for b in range(BUCKETS)]


def changed_slices(held: Rows, changed: np.ndarray) -> list[bytes]:
    starts = slice_of(held.ms)
    return [encode_rows(held.take(starts == s)) for s in np.unique(starts[changed]).tolist()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=25_000)
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    rng, ids = np.random.default_rng(3), random.Random(3)
    averages = {f"cust_{i}": AVERAGE for i in range(args.customers)}
    t0 = time.monotonic()
    batches = [make_batch(k, args.batch, args.customers, rng, ids) for k in range(args.batches)]
    print(f"{args.batches} batches of {args.batch:,} events made in {time.monotonic() - t0:.1f} s")
    held = {b: Rows.empty() for b in range(BUCKETS)}
    phases: dict[str, list[float]] = {"judge": [], "state": [], "output": [], "floor": []}
    alerts = []
    for k, blobs in enumerate(batches):
        watermark = T0 + k * args.batch - 1
        spent = dict.fromkeys(phases, 0.0)
        n_alerts = 0
        for b, blob in enumerate(blobs):
            t = time.perf_counter()
            new = decode_rows(blob)
            spent["state"] += time.perf_counter() - t
            t = time.perf_counter()
            result = judge(held[b], new, watermark, averages, DEFAULT_HISTORY)
            spent["judge"] += time.perf_counter() - t
            t = time.perf_counter()
            changed_slices(result.held, result.changed)
            spent["state"] += time.perf_counter() - t
            t = time.perf_counter()
            output_frame(result, watermark)
            spent["output"] += time.perf_counter() - t
            # the floor: the same rows through state, no rule evaluated
            t = time.perf_counter()
            decode_rows(blob)
            changed_slices(result.held, result.changed)
            spent["floor"] += time.perf_counter() - t
            held[b] = result.held
            n_alerts += len(result.alerts)
        for name, seconds in spent.items():
            phases[name].append(seconds * 1000)
        alerts.append(n_alerts)
        total = spent["judge"] + spent["state"] + spent["output"]
        print(
            f"batch {k}: {total * 1000:.0f} ms, {n_alerts:,} alerts, "
            f"{sum(len(h) for h in held.values()):,} held rows",
            flush=True,
        )
    steady = slice(min(12, args.batches - 1), None)
    med = {name: statistics.median(v[steady]) for name, v in phases.items()}
    total = med["judge"] + med["state"] + med["output"]
    print()
    print(
        f"per micro-batch of {args.batch:,} events at a full horizon (median of "
        f"{len(phases['judge'][steady])} batches, {statistics.median(alerts[steady]):,.0f} alerts): "
        f"{total:.0f} ms = judge {med['judge']:.0f} + state rows {med['state']:.0f} + output "
        f"{med['output']:.0f}; {args.batch / total * 1000:,.0f} events/s on one core"
    )
    print(
        f"baseline, the rows through state with no rule: {med['floor']:.0f} ms "
        f"(the processor costs {total / med['floor']:.1f} x that)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
