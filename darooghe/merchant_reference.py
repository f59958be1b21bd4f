"""The merchant register as reference records that travel with the transactions.

A transaction names its merchant but not the merchant's business hours, city or contract. The
generator publishes its merchant population beside the transactions it produces, and the batch
layer reads that back, so an analysis that needs a merchant's attributes takes them from the data,
never from re-running the generator with parameters it would have to guess.

One record per merchant, in the project's record format (darooghe.records): key = merchant_id,
value = a JSON object of FIELDS in that order with compact separators (the same merchant always
gives the same bytes), timestamp = the first transaction record's timestamp of the run.

Where the records go, chosen by the generator's sink:
- Kafka sink: the topic darooghe.merchants (darooghe.topics.MERCHANTS), compacted. A re-run with
  the same seed republishes the same key/value pairs and compaction keeps the latest per key, so
  the topic holds one register, not a pile of copies; readers take the latest value per key
  (a null value deletes the merchant). A generator started with another seed or MERCHANT_COUNT
  overwrites the merchants it shares ids with: the register is the latest generator's, as a real
  merchant register follows its latest update.
- File sink: a side file next to the output, `side_file(output)` (`h.jsonl` -> `h.merchants.jsonl`),
  in the same record format, so `darooghe topics replay darooghe.merchants --input
  h.merchants.jsonl` gives the topic the Kafka sink would have written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from darooghe.records import Record

FIELDS = (
    "merchant_id",
    "merchant_category",
    "city",
    "location",
    "commission_type",
    "open_hour",
    "close_hour",
)
#: The value's schema for Spark's from_json (same fields, same order as FIELDS).
SPARK_DDL = (
    "merchant_id string, merchant_category string, city string, "
    "location struct<lat: double, lng: double>, commission_type string, "
    "open_hour int, close_hour int"
)
SIDE_FILE_SUFFIX = ".merchants"


def valid_hours(open_hour: int, close_hour: int) -> bool:
    """Business hours in Tehran local hours: open when open_hour <= hour < close_hour."""
    return 0 <= open_hour < close_hour <= 24


def encode(merchant: Mapping) -> str:
    """The JSON value of one merchant's reference record; refuses an incomplete merchant."""
    missing = [f for f in FIELDS if f not in merchant]
    if missing:
        raise ValueError(
            f"merchant {merchant.get('merchant_id')!r}: reference record lacks {', '.join(missing)}"
        )
    if not valid_hours(merchant["open_hour"], merchant["close_hour"]):
        raise ValueError(
            f"merchant {merchant['merchant_id']!r}: business hours "
            f"{merchant['open_hour']}..{merchant['close_hour']} are not 0 <= open < close <= 24"
        )
    return json.dumps({f: merchant[f] for f in FIELDS}, ensure_ascii=False, separators=(",", ":"))


def reference_records(merchants: Iterable[Mapping], timestamp: int) -> list[Record]:
    """One record per merchant: key = merchant_id, value = encode(merchant)."""
    return [Record(m["merchant_id"], encode(m), int(timestamp)) for m in merchants]


def side_file(output: str | Path) -> Path:
    """The reference side file of a generator output file: `h.jsonl` -> `h.merchants.jsonl`."""
    output = Path(output)
    return output.with_name(f"{output.stem}{SIDE_FILE_SUFFIX}{output.suffix or '.jsonl'}")
