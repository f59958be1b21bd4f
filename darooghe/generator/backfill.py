"""Historical backfills into Kafka that never write the same time window twice.

A backfill writes [end − days, end) into a topic. Writing a window that overlaps one already
written would double the traffic of those hours (and the batch layer's figures), so every
finished backfill is recorded in a small JSON ledger under $DAROOGHE_HOME/generator/, per topic,
and a backfill whose window overlaps a recorded one is skipped. The ledger is locked for the
whole write, so two backfills started together cannot both write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from darooghe.config import Settings
from darooghe.generator.engine import Engine, Renderer
from darooghe.generator.params import GeneratorParams
from darooghe.generator.runner import Progress, Summary, iso, parse_end, run_history
from darooghe.generator.sinks import KafkaSink
from darooghe.topics import LABEL_HEADER, MERCHANTS


def ledger_path(settings: Settings) -> Path:
    return settings.home / "generator" / "backfills.json"


class BackfillLedger:
    """The windows already written, per topic: a JSON list of entries."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[BackfillLedger]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def entries(self) -> list[dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as exc:
            raise ValueError(f"backfill ledger {self.path} is not JSON ({exc}); fix or remove it") from None
        return list(data)

    def overlapping(self, topic: str, start_ms: int, end_ms: int) -> dict | None:
        for entry in self.entries():
            if entry["topic"] == topic and entry["start_ms"] < end_ms and start_ms < entry["end_ms"]:
                return entry
        return None

    def add(self, entry: dict) -> None:
        entries = self.entries() + [entry]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(self.path)


@dataclass
class BackfillOutcome:
    written: bool
    start_ms: int
    end_ms: int
    summary: Summary | None = None
    overlaps: dict | None = None  # the recorded backfill that made this one skip


def backfill(
    params: GeneratorParams,
    topic: str,
    make_producer: Callable[..., Producer],
    ledger: BackfillLedger,
    end: str | None = None,
    progress: Progress | None = None,
    merchants_topic: str = MERCHANTS.name,
) -> BackfillOutcome:
    """Write params.days of history ending at `end` (default: now truncated to the hour), and the
    population's merchant register into `merchants_topic` (generator.sinks.KafkaSink)."""
    end_ms = parse_end(end)
    start_ms = end_ms - params.days * 86_400_000
    with ledger.locked():
        previous = ledger.overlapping(topic, start_ms, end_ms)
        if previous is not None:
            return BackfillOutcome(False, start_ms, end_ms, overlaps=previous)
        engine = Engine(params)
        renderer = Renderer(engine.population, LABEL_HEADER)
        sink = KafkaSink(topic, renderer, make_producer, LABEL_HEADER, merchants_topic)
        summary = run_history(engine, sink, start_ms, end_ms, progress)
        ledger.add(
            {
                "topic": topic,
                "start_ms": start_ms,
                "end_ms": end_ms,
                "start": iso(start_ms),
                "end": iso(end_ms),
                "seed": params.seed,
                "events": summary.events,
                "params": params.as_dict(),
                "written_at": iso(int(time.time() * 1000)),
            }
        )
    return BackfillOutcome(True, start_ms, end_ms, summary=summary)
