"""The stateful processor of the fraud job (`transformWithStateInPandas`, event-time mode).

The grouping key is a fixed bucket of customers (`customer_bucket`; BUCKETS of them, or the count
the checkpoint recorded). Each call gets the bucket's new rows of the micro-batch (packed by
`pack_buckets`: a few input rows per bucket) and judges them all at once with
`darooghe.fraud.columnar.judge` (vectorised: one sort, `searchsorted` counts, a numpy haversine over
each customer's horizon neighbours), with the rule history of the snapshot the task read when it
started (`darooghe.fraud.rule_snapshot.RuleSnapshot`) and the customers' averages
(`darooghe.fraud.profiles.ProfileSnapshot`).

State, per bucket: MapState `held_slices`, key = the start of a SLICE_MS slice of event time, value
= the bucket's held rows of that slice in the compact binary form of `columnar.encode_rows` (ids,
time, location, amount, risk_level, alerted bits). Why slices of a bucket rather than a window per
customer: every state call is a round trip between the Python worker and the JVM, and the profile
of the per-customer layout (one MapState entry per customer: a read and a write per customer per
batch) spent 62 % of the Python worker's time in them (README, bench.streaming). A batch costs per
bucket one read of the manifest, a read of each slice the worker's cache does not hold (none, or
the one or two another worker wrote), one write per slice that changed (new rows land in the
latest one or two slices), the manifest's write and the timer check: a handful of calls per
bucket, whatever the number of customers. The bucket count is part of the checkpoint: the job records it
beside the checkpoint and keeps it for the checkpoint's life (`fraud_job.checkpoint_buckets`).
SLICE_MS is too: changing it (or coming from the per-customer layout) needs `--fresh`.

ValueState `held_version` holds the bucket's manifest: each slice's start and a random token
written with every change of that slice (`encode_manifest`). A worker keeps the held rows it last
loaded or saved (`_HELD`) with the manifest they match: the same manifest means the state holds
those rows, and no slice is read; another means only the slices whose tokens changed are read.

Eviction is exact (`judge` drops rows before watermark - horizon, horizon = the rule history's
longest look-back): a slice wholly before that is removed, the one straddling it is rewritten.
Per bucket one event-time timer (ValueState `next_scan`), SCAN_EVERY_MS after the watermark when
registered, does the same for buckets that get no input. (State TTL is processing-time only and
would evict by wall clock, not event time.)

Output rows: kind "alert" (value = alert JSON), "decision" (value = the REVIEW or BLOCK decision of
darooghe.fraud.decisions on a transaction alerted in the batch), "late" (event time before the
watermark: value = its record, darooghe.fraud.late; judged by AMOUNT_ANOMALY only) and
"duplicate" (a redelivered transaction_id). The input deliberately carries no watermark-marked column, so Spark hands late
rows to the processor instead of dropping them.
"""

from __future__ import annotations

import json
import uuid
from collections import namedtuple
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType

from darooghe.fraud.alerts import now_ms, value_json
from darooghe.fraud.columnar import NO_RISK, Judgment, Rows, decode_rows, encode_rows, judge
from darooghe.fraud.decisions import decide_transactions
from darooghe.fraud.late import late_value
from darooghe.fraud.profiles import ProfileSnapshot
from darooghe.fraud.rule_snapshot import RuleSnapshot
from darooghe.fraud.ruleset import DEFAULT_HISTORY, RuleHistory
from darooghe.fraud.txn import iso_ms

#: Customer buckets of a new checkpoint (the grouping key). Why 6: Spark places a bucket in state
#: partition pmod(murmur3(bucket), partitions); 6 buckets fall 3/3 into the default 2 partitions
#: where 32 fell 20/12, and every bucket costs a few state round trips per micro-batch. Measured
#: live at 1,000 events/s (median micro-batch): 32 buckets 741 ms, 8 buckets 600 ms; sustained
#: (400,000-event backlog): 32 buckets 16,870 events/s, 6 buckets 18,524.
BUCKETS = 6
#: The buckets of a checkpoint started before the count was recorded (darooghe.streaming.fraud_job).
LEGACY_BUCKETS = 32
#: Event-time width of one state entry of a bucket.
SLICE_MS = 20_000
#: How often (in event time) a bucket without input looks for slices out of reach.
SCAN_EVERY_MS = 60_000
#: Columns the processor reads (the watermark column was projected away).
INPUT_COLUMNS = (
    "bucket",
    "customer_id",
    "transaction_id",
    "event_ms",
    "lat",
    "lng",
    "amount",
    "risk_level",
)
#: What the processor is fed: per Arrow batch of the input and bucket, one row holding the bucket's
#: new rows in `encode_rows` form (`pack_buckets`).
PACKED_SCHEMA = "bucket int, rows binary"
OUTPUT_COLUMNS = ("kind", "customer_id", "transaction_id", "rule", "alert_id", "event_ms", "value")
OUTPUT_SCHEMA = (
    "kind string, customer_id string, transaction_id string, rule string, alert_id string, "
    "event_ms long, value string"
)
#: One output row, as the fraud job's foreachBatch reads it.
OutputRow = namedtuple("OutputRow", OUTPUT_COLUMNS)
SLICES, NEXT_SCAN, HELD_VERSION = "held_slices", "next_scan", "held_version"
#: The state variables' schemas (their names and types are part of the checkpoint).
SLICE_KEY = StructType([StructField("slice_ms", LongType())])
SLICE_ROWS = StructType([StructField("rows", BinaryType())])
TIMER_VALUE = StructType([StructField("timer_ms", LongType())])
TOKEN_VALUE = StructType([StructField("token", StringType())])
ALERT, DECISION, LATE, DUPLICATE = "alert", "decision", "late", "duplicate"


def customer_bucket(customer_id: Column, buckets: int = BUCKETS) -> Column:
    """The grouping key: a stable hash of customer_id into `buckets` buckets."""
    return F.pmod(F.hash(customer_id), F.lit(buckets)).cast("int")


def slice_of(ms):
    """Start of the SLICE_MS slice holding event time `ms` (int or array)."""
    return ms - ms % SLICE_MS


def rows_of_batch(batch: pa.RecordBatch) -> Rows:
    """The INPUT_COLUMNS of an Arrow batch as Rows (a missing risk_level is NO_RISK)."""

    def column(name: str, dtype) -> np.ndarray:
        return batch.column(name).to_numpy(zero_copy_only=False).astype(dtype, copy=False)

    return Rows.build(
        column("customer_id", object),
        column("transaction_id", object),
        column("event_ms", np.int64),
        column("lat", np.float64),
        column("lng", np.float64),
        column("amount", np.int64),
        pc.fill_null(batch.column("risk_level"), NO_RISK).to_numpy().astype(np.int8),
    )


def pack_buckets(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """mapInArrow before the stateful operator: each Arrow batch of INPUT_COLUMNS becomes one row
    per bucket (PACKED_SCHEMA). Why: PySpark's pandas input path of transformWithStateInPandas
    turns every input row into a Python tuple and rebuilds a DataFrame from them; packed, a
    micro-batch reaches the processor as a few rows per bucket whatever its size, and each is
    decoded with numpy. Stateless and per partition, so it needs no state and keeps exactness:
    the processor sees the same rows, only fewer, larger input rows."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = rows_of_batch(batch)
        bucket = batch.column("bucket").to_numpy(zero_copy_only=False)
        order = np.argsort(bucket, kind="stable")
        keys, starts = np.unique(bucket[order], return_index=True)
        ends = [*starts[1:].tolist(), len(order)]
        blobs = [encode_rows(rows.take(order[a:b])) for a, b in zip(starts.tolist(), ends)]
        yield pa.RecordBatch.from_arrays(
            [pa.array(keys, pa.int32()), pa.array(blobs, pa.binary())], names=["bucket", "rows"]
        )


#: Per Python worker: bucket key -> (manifest, held rows) as this worker last loaded or saved them.
#: A slice's rows in the cache are the state's while the state's manifest holds the same token for
#: it: _save writes a new random token with every change of a slice, and a state rolled back (a
#: micro-batch re-run after a failure) or written by another worker or query holds others, so
#: those slices are read from the state again. Why: at a full horizon (about 300,000 held rows)
#: reading and decoding every slice each batch was 27 % of the Python worker's time (py-spy over
#: bench.streaming's sustained phase). Why per slice: Spark hands a state partition to whichever
#: Python worker is idle, so with two workers a bucket changes worker about every other batch
#: (traced on a 300,000-event run: 48 loads found the cache current, 42 found it one or more
#: batches behind); most of its slices have not changed since that worker last saw them.
_HELD: dict[tuple, tuple[dict[int, str], Rows]] = {}

#: Prefix of a manifest in `held_version`; a value without it is the single token of the layout
#: before (one token for the whole bucket), whose slices are then all read and renamed.
MANIFEST = "m1:"


def encode_manifest(manifest: dict[int, str]) -> str:
    """`m1:start=token,...` in slice order."""
    return MANIFEST + ",".join(f"{start}={token}" for start, token in sorted(manifest.items()))


def decode_manifest(text: str) -> dict[int, str] | None:
    """The slices' tokens, or None for a value of the layout before manifests."""
    if not text.startswith(MANIFEST):
        return None
    body = text[len(MANIFEST) :]
    pairs = (item.split("=", 1) for item in body.split(",")) if body else ()
    return {int(start): token for start, token in pairs}


def new_token() -> str:
    return uuid.uuid4().hex


class FraudDetector(StatefulProcessor):
    """Runs the three fraud rules exactly, per bucket of customers, in event time."""

    def __init__(self, profiles_snapshot: str, rules_snapshot: str | None = None) -> None:
        self.profiles_snapshot = profiles_snapshot
        self.rules_snapshot = rules_snapshot

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        # StructTypes, not DDL strings: PySpark sends each string to the JVM to be parsed, a round
        # trip per schema per task (four of them) before the first row.
        self.slices = handle.getMapState(SLICES, SLICE_KEY, SLICE_ROWS)
        self.next_scan = handle.getValueState(NEXT_SCAN, TIMER_VALUE)
        self.version = handle.getValueState(HELD_VERSION, TOKEN_VALUE)
        # Re-read per task: a refreshed snapshot is picked up by the next micro-batch.
        self.averages = ProfileSnapshot(self.profiles_snapshot).read()
        self.history = (
            RuleSnapshot(self.rules_snapshot).read() if self.rules_snapshot else DEFAULT_HISTORY
        )

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:
        watermark = timerValues.getCurrentWatermarkInMs()
        new = Rows.concat([decode_rows(blob) for frame in rows for blob in frame["rows"]])
        if not len(new):
            return
        held, stale = self._load(key, watermark - self.history.horizon_ms)
        result = judge(held, new, watermark, self.averages, self.history)
        self._save(key, result, stale)
        if not self.next_scan.exists():
            self._schedule_scan(watermark)
        out = output_frame(result, watermark, self.history)
        if out is not None:
            yield out

    def handleExpiredTimer(self, key, timerValues, expiredTimerInfo) -> Iterator[pd.DataFrame]:
        watermark = timerValues.getCurrentWatermarkInMs()
        held, stale = self._load(key, watermark - self.history.horizon_ms)
        result = judge(held, Rows.empty(), watermark, {}, self.history)
        self._save(key, result, stale)
        if len(result.held):
            self._schedule_scan(watermark)
        else:
            self.next_scan.clear()
        return iter([])

    def close(self) -> None:
        pass

    # --- state ---------------------------------------------------------------------------------
    def _load(self, key, cutoff: int) -> tuple[Rows, set[int]]:
        """The bucket's held rows (slices wholly before `cutoff` removed), and the slices that
        hold rows before it (rewritten by _save without them).

        The slices whose tokens in the state's manifest are the ones this worker's cache holds
        (`_HELD`) come from the cache, the others from the state."""
        stored = self.version.get()  # None when absent: one state call, not exists() then get()
        text = self._stored = None if stored is None else stored[0]
        manifest = {} if text is None else decode_manifest(text)
        if manifest is None:  # the layout before manifests: read every slice, name each afresh
            held, manifest = self._read_all(cutoff)
        else:
            held = self._read_changed(key, manifest, cutoff)
        gone = {start for start in manifest if start + SLICE_MS <= cutoff}
        for start in gone:
            self.slices.removeKey((start,))
            del manifest[start]
        self._manifest = manifest
        before = held.ms < cutoff
        starts = set(np.unique(slice_of(held.ms[before])).tolist()) if before.any() else set()
        return held, starts - gone

    def _read_changed(self, key, manifest: dict[int, str], cutoff: int) -> Rows:
        cached_manifest, cached = _HELD.get(key, ({}, Rows.empty()))
        if cached_manifest == manifest:
            return cached
        same = [s for s, t in manifest.items() if cached_manifest.get(s) == t]
        parts = [cached.take(np.isin(slice_of(cached.ms), same))] if same else []
        for start in manifest.keys() - set(same):
            if start + SLICE_MS > cutoff:  # a slice wholly before it is removed unread
                parts.append(decode_rows(self.slices.getValue((start,))[0]))
        return Rows.concat(parts)

    def _read_all(self, cutoff: int) -> tuple[Rows, dict[int, str]]:
        parts, manifest = [], {}
        for (start,), (blob,) in self.slices.iterator():
            manifest[start] = new_token()
            if start + SLICE_MS > cutoff:
                parts.append(decode_rows(blob))
        return Rows.concat(parts), manifest

    def _save(self, key, result: Judgment, stale: set[int]) -> None:
        """Write the slices that changed, each with a new token, then the manifest if it changed;
        cache the held rows under it."""
        held = result.held
        starts = slice_of(held.ms)
        dirty = stale | set(np.unique(starts[result.changed]).tolist())
        manifest = dict(self._manifest)
        for start in sorted(dirty):
            mine = starts == start
            if mine.any():
                self.slices.updateValue((start,), (encode_rows(held.take(mine)),))
                manifest[start] = new_token()
            else:
                self.slices.removeKey((start,))
                manifest.pop(start, None)
        text = encode_manifest(manifest)
        if text != self._stored:
            self.version.update((text,))
        _HELD[key] = (manifest, held)

    def _schedule_scan(self, watermark: int) -> None:
        at = max(watermark, 0) + SCAN_EVERY_MS
        self.handle.registerTimer(at)
        self.next_scan.update((at,))


def output_frame(
    result: Judgment,
    watermark: int,
    history: RuleHistory = DEFAULT_HISTORY,
    decided_ms: int | None = None,
) -> pd.DataFrame | None:
    """The processor's output rows for one bucket's judgment: its alerts, the REVIEW and BLOCK
    decisions of the transactions they are about (`decide_transactions` with the rule history that
    judged them: a transaction's alerts are all in its customer's bucket), its late and redelivered
    rows. Why decisions here and not on the driver: the driver parsed every alert's JSON back
    (about 44 ms a micro-batch of 25,000 events with 2,150 alerts, while the executors waited)."""
    values = [a.to_value() for a in result.alerts]
    out = [
        (ALERT, a.customer_id, a.transaction_id, a.rule, a.alert_id, a.event_ms, value_json(v))
        for a, v in zip(result.alerts, values, strict=True)
    ]
    if values:
        decided = now_ms() if decided_ms is None else decided_ms
        event_ms = {a.transaction_id: a.event_ms for a in result.alerts}
        for d in decide_transactions(values, history, decided):
            tid = d["transaction_id"]
            out.append((DECISION, d["customer_id"], tid, None, None, event_ms[tid], value_json(d)))
    if len(result.late):
        raised: dict[tuple[str, str], list] = {}
        for a in result.alerts:
            raised.setdefault((a.customer_id, a.transaction_id), []).append(a)
        for t, judged in zip(result.late.txns(), result.late_judged, strict=True):
            alerts = raised.get((t.customer_id, t.transaction_id), ())
            value = late_value(t, watermark, judged, alerts)
            out.append(_other(LATE, t, json.dumps(value, separators=(",", ":"))))
    for t in result.duplicates.txns():
        value = {
            "transaction_id": t.transaction_id,
            "customer_id": t.customer_id,
            "event_time": iso_ms(t.event_ms),
            "watermark": iso_ms(watermark),
            "behind_watermark_ms": watermark - t.event_ms,
        }
        out.append(_other(DUPLICATE, t, json.dumps(value)))
    if not out:
        return None
    frame = pd.DataFrame(out, columns=list(OUTPUT_COLUMNS))
    frame["event_ms"] = frame["event_ms"].astype(np.int64)
    return frame


def _other(kind: str, t, value: str) -> tuple:
    return (kind, t.customer_id, t.transaction_id, None, None, t.event_ms, value)
