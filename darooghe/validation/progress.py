"""Counting verdicts, and the progress file a running validator leaves for Dagster sensors.

Each validator instance rewrites `<metrics_dir>/validator/<group>.<instance>.json` every few
seconds (atomically: write then rename), so a sensor can read throughput, counts and the
consumer's own view of its lag without talking to the process. The consumer-group lag the sensor
also reads from Kafka is the authoritative one; this file adds what only the process knows.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from darooghe.config import Settings
from darooghe.kafka_io import partition_offsets
from darooghe.schema import ERROR_CODES
from darooghe.validation.decision import Verdict


@dataclass
class Counts:
    """Records in, and where they went: records_in == valid + errors, always."""

    records_in: int = 0
    valid: int = 0
    errors: int = 0
    by_code: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_CODES, 0))

    def add(self, verdict: Verdict) -> None:
        self.records_in += 1
        if verdict.valid:
            self.valid += 1
        else:
            self.errors += 1
            for code in verdict.error_codes:
                self.by_code[code] += 1

    def merge(self, other: Counts) -> None:
        self.records_in += other.records_in
        self.valid += other.valid
        self.errors += other.errors
        for code, n in other.by_code.items():
            self.by_code[code] = self.by_code.get(code, 0) + n

    def summary(self) -> str:
        codes = ", ".join(f"{code} {n}" for code, n in self.by_code.items())
        return (
            f"in {self.records_in} = valid {self.valid} + errors {self.errors} (by code: {codes})"
        )

    def to_dict(self) -> dict:
        return {
            "records_in": self.records_in,
            "valid": self.valid,
            "errors": self.errors,
            "by_code": dict(self.by_code),
        }


def progress_dir(settings: Settings) -> Path:
    return settings.metrics_dir / "validator"


def progress_path(settings: Settings, group_id: str, instance: str) -> Path:
    return progress_dir(settings) / f"{group_id}.{instance}.json"


def write_progress(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_progress(settings: Settings, group_id: str) -> list[dict]:
    """The progress reports of every instance of `group_id` (unreadable files are skipped)."""
    reports = []
    for path in sorted(progress_dir(settings).glob("*.json")):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now, or not ours
        if isinstance(report, dict) and report.get("group_id") == group_id:
            reports.append(report)
    return reports


def base_report(group_id: str, instance: str, **extra) -> dict:
    return {
        "group_id": group_id,
        "instance": instance,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at_ms": int(time.time() * 1000),
        **extra,
    }


def consumer_group_lag(group_consumer, topic: str) -> dict[int, dict[str, int | None]]:
    """partition -> {committed, high, lag} of the consumer group whose group.id `group_consumer` has.

    Read from Kafka, so it is right even when no validator runs. `group_consumer` only fetches
    committed offsets and watermarks; it never joins the group. A partition the group has never
    committed counts from its low watermark (auto.offset.reset is earliest).
    """
    return {
        p: {"committed": o.committed, "high": o.high, "lag": o.lag}
        for p, o in partition_offsets(group_consumer, topic, committed=True).items()
    }
