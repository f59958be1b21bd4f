"""The file mode: the same verdicts as the Kafka service, on a record file.

Input records carry their record timestamps (the ingestion time the ERR_TIME rule needs), so a
dump of darooghe.transactions validates here exactly as it would in Kafka. The two outputs hold
exactly the records that would go to each topic (key, value, record timestamp, headers); they are
written to temporary files and renamed at the end, so a malformed input line leaves no half output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from darooghe.config import load_settings
from darooghe.records import Record, read_records
from darooghe.topics import TRANSACTIONS
from darooghe.validation.decision import decide_record
from darooghe.validation.progress import Counts


def validate_file(
    input_path: str | Path,
    valid_path: str | Path,
    errors_path: str | Path,
    input_topic: str = TRANSACTIONS.name,
    log: Callable[[str], None] = print,
    progress_every: int = 100_000,
) -> Counts:
    valid_path, errors_path = Path(valid_path), Path(errors_path)
    for path in (valid_path, errors_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    valid_tmp = valid_path.with_name(f".{valid_path.name}.{os.getpid()}.tmp")
    errors_tmp = errors_path.with_name(f".{errors_path.name}.{os.getpid()}.tmp")
    counts = Counts()
    t0 = time.monotonic()
    settings = load_settings()
    try:
        with (
            valid_tmp.open("w", encoding="utf-8") as valid_out,
            errors_tmp.open("w", encoding="utf-8") as errors_out,
        ):
            for record in read_records(input_path):
                verdict = decide_record(
                    record,
                    input_topic,
                    max_record_bytes=settings.max_record_bytes,
                    clock_skew_ms=settings.clock_skew_ms,
                )
                out = Record(
                    key=None
                    if verdict.key is None
                    else verdict.key.decode("utf-8", errors="replace"),
                    value=verdict.value.decode("utf-8"),
                    timestamp=verdict.timestamp,
                    headers=record.headers,
                )
                (valid_out if verdict.valid else errors_out).write(out.to_json() + "\n")
                counts.add(verdict)
                if counts.records_in % progress_every == 0:
                    rate = counts.records_in / (time.monotonic() - t0)
                    log(f"  {counts.summary()}; {rate:,.0f}/s")
        os.replace(valid_tmp, valid_path)
        os.replace(errors_tmp, errors_path)
    finally:
        valid_tmp.unlink(missing_ok=True)
        errors_tmp.unlink(missing_ok=True)
    return counts
