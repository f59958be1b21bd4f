"""Reading the MongoDB collections the charts draw, within what FerretDB 1.x can do.

FerretDB 1.24 computes only the FIRST accumulator of a `$group` stage correctly, on its PostgreSQL
backend as on SQLite (measured: `{"$group": {"_id": "$k", "n": {"$sum": 1}, "s": {"$sum": "$x"}}}`
returns s = 0; the accumulators share one iterator over the group, which the first one exhausts).
So `grouped` runs one single-accumulator pipeline per figure and joins the results in pandas; it
also avoids the accumulators FerretDB lacks ($avg, $addToSet, ...).

The charts of the last 24 hours never read the detailed `transactions` collection (1.44 M
documents a day at the top rate; FerretDB decodes ~20k documents a second): they read its hourly
rollups (darooghe.batch.transactions_store) through `window_rollup`, one indexed equality query
per UTC date of the window.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from pymongo.database import Database

from darooghe import mongo_collections as mc
from darooghe.batch import transactions_store as store

# Collections written by the batch layer, the streaming layer and the sinks.
TRANSACTIONS = mc.TRANSACTIONS
TRANSACTIONS_HOURLY = mc.TRANSACTIONS_HOURLY
ACTIVITY_HOURLY = mc.ACTIVITY_HOURLY
SPENDING_TREND = mc.SPENDING_TREND
CUSTOMER_PROFILES = mc.CUSTOMER_PROFILES
CUSTOMER_SEGMENTS = mc.CUSTOMER_SEGMENTS
SEGMENT_SUMMARY = mc.SEGMENT_SUMMARY
COMMISSION_BY_CATEGORY = mc.COMMISSION_BY_CATEGORY
TEMPORAL_PATTERNS = mc.TEMPORAL_PATTERNS
FRAUD_ALERTS = mc.FRAUD_ALERTS
ERROR_SUMMARY = mc.ERROR_SUMMARY
LIVE_CATEGORY_VOLUME = mc.LIVE_CATEGORY_VOLUME
LIVE_COMMISSION_BY_TYPE = mc.LIVE_COMMISSION_BY_TYPE
LIVE_COMMISSION_RATIO = mc.LIVE_COMMISSION_RATIO
LIVE_TOP_MERCHANTS = mc.LIVE_TOP_MERCHANTS


FETCH_BATCH = 10_000


def grouped(
    db: Database,
    collection: str,
    by: str | Mapping[str, str],
    sums: Mapping[str, str | int],
    match: Mapping | None = None,
    sort: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Group `collection` by one field or several and sum, one pipeline per sum (see module doc).

    by: a field name, or {output column: field name}. sums: {output column: field name or 1}.
    With `sort` (a sum column) and `limit`, the largest groups of that column are kept, in order.
    Documents missing a grouping field are left out.
    """
    keys = {by: by} if isinstance(by, str) else dict(by)
    group_id = {col: f"${field}" for col, field in keys.items()}
    frames = []
    for column, value in sums.items():
        accumulator = value if isinstance(value, int) else f"${value}"
        pipeline: list[dict] = []
        if match:
            pipeline.append({"$match": dict(match)})
        pipeline.append({"$group": {"_id": group_id, column: {"$sum": accumulator}}})
        if sort == column:
            pipeline.append({"$sort": {column: -1}})
            if limit:
                pipeline.append({"$limit": limit})
        rows = [
            {**row["_id"], column: row[column]}
            for row in db[collection].aggregate(pipeline)
            if all(row["_id"].get(col) is not None for col in keys)
        ]
        frames.append(pd.DataFrame(rows, columns=[*keys, column]))
    result = frames[0]
    for frame in frames[1:]:
        how = "left" if sort else "outer"
        result = result.merge(frame, on=list(keys), how=how)
    for column in sums:
        result[column] = pd.to_numeric(result[column]).fillna(0)
    if sort:
        result = result.sort_values([sort, *keys], ascending=[False, *[True] * len(keys)])
        if limit:
            result = result.head(limit)
    return result.reset_index(drop=True)


def fetch(
    db: Database,
    collection: str,
    fields: list[str],
    match: Mapping | None = None,
    sort: list[tuple[str, int]] | None = None,
    limit: int = 0,
) -> pd.DataFrame:
    """Documents of `collection` as a DataFrame with exactly `fields` as columns (missing = NaN)."""
    # Large batches: FerretDB answers a getMore of 10,000 documents about twice as fast per document.
    cursor = db[collection].find(dict(match or {}), {f: 1 for f in fields} | {"_id": 0})
    cursor = cursor.batch_size(FETCH_BATCH)
    if sort:
        cursor = cursor.sort(sort)
    if limit:
        cursor = cursor.limit(limit)
    return pd.DataFrame(list(cursor), columns=fields)


def utc_naive(values: pd.Series) -> pd.Series:
    """Datetimes (aware, naive or ISO strings) as naive UTC, which both plotting libraries accept."""
    return pd.to_datetime(values, utc=True, format="ISO8601").dt.tz_localize(None)


def hour_of(dates: pd.Series, hours: pd.Series) -> pd.Series:
    """`event_date` ("YYYY-MM-DD") and `event_hour` (0-23, UTC) as one naive UTC datetime."""
    return pd.to_datetime(dates, format="%Y-%m-%d") + pd.to_timedelta(hours.astype(int), unit="h")


def latest_span(db: Database, collection: str, field: str, span: pd.Timedelta) -> dict | None:
    """A $match on `field` for the `span` before its latest value, or None when there is none."""
    newest = db[collection].find_one({field: {"$exists": True}}, {field: 1}, sort=[(field, -1)])
    if not newest or newest.get(field) is None:
        return None
    since = pd.Timestamp(newest[field])
    since = (since.tz_localize("UTC") if since.tzinfo is None else since) - span
    return {field: {"$gte": since.to_pydatetime()}}


def with_hour(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with an `event_date` and `event_hour`, plus their `hour` as a naive UTC datetime."""
    frame = frame.dropna(subset=["event_date", "event_hour"])
    return frame.assign(hour=hour_of(frame["event_date"], frame["event_hour"]))


def top(values: pd.Series, n: int, name: str) -> pd.DataFrame:
    """The `n` largest of a series indexed by key, ties broken by key: columns key, `name`."""
    frame = values.rename(name).rename_axis("key").reset_index()
    frame = frame.sort_values([name, "key"], ascending=[False, True]).head(n)
    return frame.rename(columns={"key": values.index.name}).reset_index(drop=True)


def window_rollup(db: Database, collection: str, fields: list[str]) -> pd.DataFrame:
    """The rollup documents of the hour buckets the 24-hour store spans (the newest hour loaded and
    the 24 before it, the oldest one partly), with `fields` plus `hour` (naive UTC). Empty before
    anything was loaded."""
    hours = [
        hour_of(pd.Series([d["event_date"]]), pd.Series([d["event_hour"]]))[0]
        for d in db[store.ACTIVITY].find({}, {"event_date": 1, "event_hour": 1})
        if "event_date" in d
    ]
    columns = [*dict.fromkeys(["event_date", "event_hour", *fields]), "hour"]
    if not hours:
        return pd.DataFrame(columns=columns).astype({"hour": "datetime64[ns]"})
    newest = max(hours).tz_localize("UTC").to_pydatetime()
    first = newest - store.RETENTION
    frames = [
        fetch(db, collection, list(dict.fromkeys(["event_date", "event_hour", *fields])), {"event_date": day})
        for day in sorted({d for d, _ in store.buckets_between(first, newest)})
    ]
    frame = with_hour(pd.concat(frames, ignore_index=True))
    lo, hi = pd.Timestamp(first).tz_localize(None), pd.Timestamp(newest).tz_localize(None)
    return frame[(frame["hour"] >= lo) & (frame["hour"] <= hi)].reset_index(drop=True)[columns]
