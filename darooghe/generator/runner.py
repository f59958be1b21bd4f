"""History and live runs: chunking the time axis, pacing real time, progress and the summary.

History mode covers [end − days, end) in fixed chunks whose length depends only on the parameters,
so the same seed, parameters and `end` give the same bytes. `end` defaults to the current time
truncated to the hour: two runs in the same hour agree; for byte-identical output at any time give
the same `--end`.

Live mode samples the same process chunk by chunk (one second of event time each) and sleeps until
each sampled arrival time, then writes the events that are due with the record timestamp "now"
(never before the event time, so live events are valid at ingestion). A stop request (SIGTERM,
Ctrl-C, or the duration) ends it between two events; the caller flushes the publisher.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from darooghe.generator.engine import Engine
from darooghe.generator.publishers import Publisher
from darooghe.schema import format_epoch_ms, parse_iso_ms

HOUR_MS = 3_600_000
LIVE_CHUNK_MS = 1_000
#: history chunks hold about this many thinning candidates (bounded to 1 min .. 6 h of time)
CHUNK_CANDIDATES = 150_000


class WindowError(ValueError):
    """A history window (--end, --days) that cannot be generated."""


def parse_end(text: str | None, now_ms: int | None = None) -> int:
    """The history end in epoch ms: ISO-8601 text (naive = UTC), or now truncated to the hour."""
    if text is None or text == "":
        now = int(time.time() * 1000) if now_ms is None else now_ms
        return now - now % HOUR_MS
    try:
        return parse_iso_ms(text)
    except ValueError:
        raise WindowError(
            f"--end {text!r} is not an ISO-8601 time (expected e.g. 2026-03-23T00:00:00Z)"
        ) from None


def history_chunk_ms(engine: Engine) -> int:
    seconds = CHUNK_CANDIDATES / engine.intensity.max_per_second
    minutes = int(min(max(seconds, 60.0), 6 * 3600.0) // 60)
    return minutes * 60_000


@dataclass
class Summary:
    mode: str
    window_start_ms: int
    window_end_ms: int
    events: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def label_counts(self) -> dict[str, int]:
        return {k.split(":", 1)[1]: v for k, v in sorted(self.counts.items()) if k.startswith("label:")}

    def describe(self) -> str:
        labels = ", ".join(f"{k}={v}" for k, v in self.label_counts().items())
        return (
            f"{self.mode}: {self.events:,} events from {format_epoch_ms(self.window_start_ms)} to "
            f"{format_epoch_ms(self.window_end_ms)} in {self.seconds:.1f} s "
            f"({self.rate:,.0f} events/s); "
            f"declined={self.counts.get('declined', 0)}; labels: {labels}"
        )


Progress = Callable[[str], None]


class ProgressMeter:
    """Prints events so far, the rate and (when the total is known) the ETA, at most every `every` s."""

    def __init__(self, report: Progress | None, expected: float | None, every: float = 2.0) -> None:
        self.report, self.expected, self.every = report, expected, every
        self.t0 = time.monotonic()
        self.last = self.t0

    def update(self, events: int, final: bool = False) -> None:
        now = time.monotonic()
        if self.report is None or (not final and now - self.last < self.every):
            return
        self.last = now
        elapsed = max(now - self.t0, 1e-9)
        rate = events / elapsed
        text = f"  {events:,} events, {rate:,.0f} events/s"
        if self.expected:
            share = min(events / self.expected, 1.0)
            eta = max(self.expected - events, 0) / rate if rate > 0 else float("inf")
            text += f", {100 * share:.0f}% of ~{self.expected:,.0f}, ETA {eta:.0f} s"
        self.report(text)


def run_history(
    engine: Engine,
    publisher: Publisher,
    start_ms: int,
    end_ms: int,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Summary:
    """Write the events of [start_ms, end_ms) with record timestamp = event time.

    A stop request ends the run after the current chunk; the summary's window then ends there.
    """
    if end_ms <= start_ms:
        raise WindowError(
            f"history window is empty: start {format_epoch_ms(start_ms)} >= end "
            f"{format_epoch_ms(end_ms)}"
        )
    t0 = time.monotonic()
    before = engine.counts["events"]
    meter = ProgressMeter(progress, engine.intensity.expected_events(start_ms / 1000, end_ms / 1000))
    step = history_chunk_ms(engine)
    reached = start_ms
    for chunk_start in range(start_ms, end_ms, step):
        if stop is not None and stop.is_set():
            break
        reached = min(chunk_start + step, end_ms)
        batch = engine.chunk(chunk_start, reached)
        publisher.write(batch, batch.t_ms)
        meter.update(engine.counts["events"] - before)
    publisher.flush()
    meter.update(engine.counts["events"] - before, final=True)
    mode = "history" if reached == end_ms else "history (stopped early)"
    return _summary(mode, engine, start_ms, reached, time.monotonic() - t0, before)


def run_live(
    engine: Engine,
    publisher: Publisher,
    start_ms: int | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> Summary:
    """Write events as their arrival times come, until `stop` is set or `duration_s` has passed.

    Starting in the past (start_ms < now, as `both` does after the history) first catches up to
    the present; then it paces: one sleep until each next arrival (in steps of at most 0.2 s so a
    stop request is seen), never a fixed interval.
    """
    stop = stop or threading.Event()

    def now_ms() -> int:
        return int(clock() * 1000)

    t0 = time.monotonic()
    before = engine.counts["events"]
    start = now_ms() if start_ms is None else start_ms
    deadline = None if duration_s is None else now_ms() + int(duration_s * 1000)
    meter = ProgressMeter(progress, None, every=10.0)
    written = 0
    chunk_start = start
    try:
        while not stop.is_set() and (deadline is None or chunk_start < deadline):
            chunk_end = chunk_start + LIVE_CHUNK_MS
            if deadline is not None:
                chunk_end = min(chunk_end, deadline)
            batch = engine.chunk(chunk_start, chunk_end)
            emitted = 0
            while emitted < len(batch) and not stop.is_set():
                now = now_ms()
                due = int(np.searchsorted(batch.t_ms, now, side="right"))
                if due > emitted:
                    part = batch.take(slice(emitted, due))
                    publisher.write(part, np.maximum(part.t_ms, now))
                    written += due - emitted
                    emitted = due
                else:
                    stop.wait(min((int(batch.t_ms[emitted]) - now) / 1000.0, 0.2))
            publisher.tick()
            meter.update(written)
            chunk_start = chunk_end
        if deadline is not None and not stop.is_set():
            stop.wait(max(deadline - now_ms(), 0) / 1000.0)  # the last chunk may end early
    except KeyboardInterrupt:
        stop.set()
    end = min(now_ms(), chunk_start)
    summary = _summary("live", engine, start, end, time.monotonic() - t0, before)
    summary.events = written  # drawn but not yet due at a stop: not written, not counted
    meter.update(written, final=True)
    return summary


def _summary(mode: str, engine: Engine, start: int, end: int, seconds: float, before: int) -> Summary:
    return Summary(
        mode=mode,
        window_start_ms=start,
        window_end_ms=end,
        events=engine.counts["events"] - before,
        seconds=seconds,
        counts=dict(engine.counts),
    )
