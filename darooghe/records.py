"""Kafka records as files: the one JSONL format the project uses wherever records leave Kafka.

One record per line:
    {"key": str|null, "value": str, "timestamp": <epoch ms>, "headers": {name: str}}
Dumps also carry "partition" and "offset". Keys are written in that fixed order with compact
separators so that the same records always give the same bytes (the generator's determinism and
the dump/replay round trip rely on it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


class RecordFileError(ValueError):
    """A record file line that is not a record; the message names the file and line."""


@dataclass(frozen=True)
class Record:
    key: str | None
    value: str
    timestamp: int
    headers: dict[str, str] = field(default_factory=dict)
    partition: int | None = None
    offset: int | None = None

    def to_json(self) -> str:
        obj: dict = {
            "key": self.key,
            "value": self.value,
            "timestamp": self.timestamp,
            "headers": self.headers,
        }
        if self.partition is not None:
            obj["partition"] = self.partition
        if self.offset is not None:
            obj["offset"] = self.offset
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v.encode()) for k, v in self.headers.items()]


def decode_bytes(data: bytes | None) -> str | None:
    """Kafka bytes to text; undecodable bytes become U+FFFD rather than failing a dump."""
    return None if data is None else data.decode("utf-8", errors="replace")


def json_object(
    text: str | bytes, where: str, error: type[Exception] = ValueError, what: str = ""
) -> dict:
    """`text` parsed as a JSON object, else `error` naming `where` (and `what` was parsed: "value
    is ") and the problem."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: {what}not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise error(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_record(line: str, where: str = "<record>") -> Record:
    """Parse one JSONL line; `where` (e.g. "file.jsonl:12") names the input in errors."""
    obj = json_object(line, where, RecordFileError)
    missing = [k for k in ("value", "timestamp") if k not in obj]
    if missing:
        raise RecordFileError(f"{where}: missing field(s) {', '.join(missing)}")
    key, value, ts = obj.get("key"), obj["value"], obj["timestamp"]
    headers = obj.get("headers") or {}
    if key is not None and not isinstance(key, str):
        raise RecordFileError(f"{where}: 'key' must be a string or null, got {key!r}")
    if not isinstance(value, str):
        raise RecordFileError(f"{where}: 'value' must be a string, got {type(value).__name__}")
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        raise RecordFileError(f"{where}: 'timestamp' must be epoch milliseconds >= 0, got {ts!r}")
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise RecordFileError(f"{where}: 'headers' must map names to strings, got {headers!r}")
    partition, offset = obj.get("partition"), obj.get("offset")
    for name, val in (("partition", partition), ("offset", offset)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
            raise RecordFileError(f"{where}: '{name}' must be an integer >= 0, got {val!r}")
    return Record(key, value, ts, dict(headers), partition, offset)


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield the records of a file, refusing a malformed line with its line number."""
    path = Path(path)
    if not path.is_file():
        raise RecordFileError(f"{path}: no such record file")
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            yield parse_record(line, f"{path}:{lineno}")


def write_records(records: Iterable[Record], out: IO[str]) -> int:
    """Write records as JSONL; returns how many."""
    n = 0
    for rec in records:
        out.write(rec.to_json())
        out.write("\n")
        n += 1
    return n


def write_record_file(records: Iterable[Record], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        return write_records(records, fh)
