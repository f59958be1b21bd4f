"""How far the error rate per code is from what the generator injects (the error_logs check).

The window is the last `window_records` input records the validator group has committed, split
evenly over the input partitions: for partition p, offsets [committed_p - share, committed_p).
Its denominator is the number of those offsets (the generator writes darooghe.transactions without
transactions, so input offsets are contiguous records). Its numerators come from the error-log
records whose `source` falls inside it; they are among the last `window_records` records of each
error-log partition, which is all that is read.

A code is flagged only when its observed rate is both statistically far from the expected one
(|z| above the threshold under a binomial model, so a small window does not cry wolf) and
materially far from it (more than the relative tolerance of the expected rate, so a huge window
does not flag a negligible drift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
from confluent_kafka import Consumer

from darooghe.kafka_io import partition_offsets, read_chunks
from darooghe.schema import ERROR_CODES
from darooghe.validation.decision import ErrorLog

#: Floor of the "materially far" test, for codes whose expected rate is (near) zero.
ABSOLUTE_TOLERANCE = 0.002


def expected_error_rates() -> dict[str, float]:
    """The generator's injected-invalid rates per code (its environment variables, else defaults)."""
    from darooghe.generator import params

    try:
        return params.from_sources({}).invalid_rates()
    except params.ParameterError:
        return params.GeneratorParams().invalid_rates()


@dataclass(frozen=True)
class CodeRate:
    code: str
    count: int
    observed: float
    expected: float
    z: float
    flagged: bool

    def describe(self) -> str:
        mark = "FAR" if self.flagged else "ok"
        return (
            f"{self.code}: {self.count} = {self.observed:.3%} (expected {self.expected:.3%}, "
            f"z {self.z:+.1f}) {mark}"
        )


def compare_rates(
    counts: dict[str, int],
    total: int,
    expected: dict[str, float],
    z_threshold: float = 4.0,
    relative_tolerance: float = 0.5,
) -> list[CodeRate]:
    """Each code's observed rate against its expected one, flagged when far on both tests."""
    out = []
    for code in ERROR_CODES:
        p = float(expected.get(code, 0.0))
        k = int(counts.get(code, 0))
        observed = k / total if total else 0.0
        if 0.0 < p < 1.0 and total:
            z = (observed - p) / math.sqrt(p * (1 - p) / total)
        else:
            z = 0.0 if k == 0 else math.copysign(math.inf, observed - p)
        material = abs(observed - p) > max(relative_tolerance * p, ABSOLUTE_TOLERANCE)
        out.append(
            CodeRate(code, k, observed, p, z, bool(total) and material and abs(z) > z_threshold)
        )
    return out


@dataclass(frozen=True)
class ErrorWindow:
    """Input records in the window, and the error-log records about them by code."""

    records: int
    errors: int
    by_code: dict[str, int]
    ranges: dict[int, tuple[int, int]]  # input partition -> [start, end)


def window_error_counts(
    group_consumer: Consumer,
    reader: Consumer,
    input_topic: str,
    error_topic: str,
    window_records: int,
    timeout: float = 30.0,
) -> ErrorWindow:
    """Count error codes over the last `window_records` committed input records.

    `group_consumer` has the validator's group.id (only its committed offsets are read; it never
    joins the group); `reader` is a read_committed consumer with no group duties and
    enable.partition.eof; its read ends at the error log's end, or after `timeout` seconds without
    a record.
    """
    offsets = partition_offsets(group_consumer, input_topic, committed=True)
    share = max(1, window_records // len(offsets))
    ranges: dict[int, tuple[int, int]] = {}
    for p, o in offsets.items():
        if not o.committed:
            continue
        start = max(o.low, o.committed - share)
        if start < o.committed:
            ranges[p] = (start, o.committed)
    records = sum(end - start for start, end in ranges.values())
    by_code = dict.fromkeys(ERROR_CODES, 0)
    errors = 0
    if not records:
        return ErrorWindow(0, 0, by_code, ranges)

    last = {p: o.high - window_records for p, o in partition_offsets(reader, error_topic).items()}
    for chunk in read_chunks(reader, error_topic, last, idle_timeout=timeout):
        for m in chunk.messages:
            try:
                log = ErrorLog.decode(m.value())
            except (msgspec.MsgspecError, TypeError):
                continue  # not an error-log value: not ours to count
            src = log.source
            window = ranges.get(src.partition) if src.topic == input_topic else None
            if window is None or src.offset is None or not window[0] <= src.offset < window[1]:
                continue
            errors += 1
            for code in log.error_codes:
                if code in by_code:
                    by_code[code] += 1
    return ErrorWindow(records, errors, by_code, ranges)
