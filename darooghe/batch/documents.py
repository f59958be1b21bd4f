"""Spark rows -> MongoDB documents, one conversion for every batch collection.

Timestamps leave Spark as epoch microseconds and become aware UTC datetimes here: a collected
TimestampType is otherwise rendered in the Python process's local time zone, whatever Spark's
session time zone says. Dates become "YYYY-MM-DD" strings (BSON has no date-only type), decimals
become floats, NaN becomes null, nested rows become sub-documents.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from decimal import Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def for_documents(frame: DataFrame) -> tuple[DataFrame, tuple[str, ...]]:
    """The frame with timestamps as epoch microseconds and dates as strings, and the names of the
    former timestamp columns (to turn back into datetimes with `row_document`)."""
    timestamps: list[str] = []
    columns = []
    for f in frame.schema.fields:
        if isinstance(f.dataType, (TimestampType, TimestampNTZType)):
            timestamps.append(f.name)
            columns.append(F.unix_micros(F.col(f.name).cast("timestamp")).alias(f.name))
        elif isinstance(f.dataType, DateType):
            columns.append(F.date_format(F.col(f.name), "yyyy-MM-dd").alias(f.name))
        else:
            columns.append(F.col(f.name))
    return frame.select(*columns), tuple(timestamps)


def from_micros(value: int | None) -> dt.datetime | None:
    return None if value is None else EPOCH + dt.timedelta(microseconds=int(value))


def clean(value):
    """A collected value as BSON accepts it."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def row_document(row, timestamps: Iterable[str]) -> dict:
    doc = {k: clean(v) for k, v in row.asDict(recursive=True).items()}
    for name in timestamps:
        doc[name] = from_micros(doc.get(name))
    return doc


def collect_documents(frame: DataFrame, key: str | Callable[[dict], str]) -> list[dict]:
    """Every row as a document with a deterministic `_id`: the value of column `key`, or key(doc)."""
    prepared, timestamps = for_documents(frame)
    return [with_id(row_document(row, timestamps), key) for row in prepared.collect()]


def with_id(doc: dict, key: str | Callable[[dict], str]) -> dict:
    value = key(doc) if callable(key) else doc[key]
    if value is None:
        raise ValueError(f"document key {key!r} is null in {doc!r}: every document needs an _id")
    return {"_id": value, **doc}
