"""The detailed `transactions` collection: the last 24 hours of valid transactions, for dashboards.

Window: 24 hours back from the wall clock (now), both when loading and when removing — the
collection answers "what happened in the last day", and a replayed history older than that
belongs in the lake and the long-term summaries, not here. Rows dated after `now` (within the
validator's clock-skew allowance) are loaded too: the load cursor passes every row it selects, so
a row it skipped for being "in the future" would never be loaded.

Documents: `_id` = transaction_id, every event field (darooghe.schema.FIELDS; `device_info` is {}
for pos and nfc), `event_time` (UTC datetime), `event_date` ("YYYY-MM-DD", UTC), `event_hour`
(0-23, UTC), `ingested_at` (when the document was written). A transaction never changes once
valid, so loading inserts only documents not yet present (darooghe.mongo_write.insert_new).

Loading is incremental: a cursor document in BATCH_STATE remembers, per Kafka partition, the last
lake offset loaded; each load reads the lake rows after it (within the window), writes them from
the Spark executors (foreachPartition, one client per partition, unordered batched inserts),
refreshes the hourly rollups of the hours it touched, and then advances the cursor. A load that
fails before moving the cursor is simply repeated: the rows already written are refused as
duplicates and counted, and the rollups of their hours are recomputed whole.

Partitioning: by the UTC hour. Every document carries its bucket (`event_date`, `event_hour`),
and every query names buckets by equality (FerretDB pushes only equality down to PostgreSQL; see
darooghe.mongo_indexes): a time range is the list of its hour buckets. The access paths are
ACCESS_PATHS below, each with the index that serves it. Charts over the whole day do not read the
1.44 M documents a day at the top rate holds: they read two hourly rollups, computed by Spark
from the same lake rows when a load touches an hour (a few thousand documents a day):
- `transactions_hourly`: per (hour, merchant): transactions by status, amount, approved amount,
  commission (approved payments only), and approved count and commission per commission type;
- `activity_hourly`: per hour: transactions and distinct active customers.
(FerretDB 1.24 computes only the first accumulator of a `$group` — measured on both backends:
`{"n": {"$sum": 1}, "s": {"$sum": "$x"}}` returns s = 0 — and decodes every matched document in
its own process at ~20k documents/s, so a day's `$group` in the database would take over a minute.)

Retention removes exactly the documents more than 24 hours old, one hour bucket per delete (at
most an hour of traffic, ~60k documents at the top rate): whole buckets before the cutoff's hour,
then the cutoff's own bucket filtered on `event_time`; the rollups of removed hours go with them.
Every load runs it, so it needs no scheduler; the hourly `transactions_retention` asset runs it too.
On MongoDB a TTL index on `event_time` does the same (detected: FerretDB 1.x refuses
expireAfterSeconds with NotImplemented); retention then finds (almost) nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from darooghe import mongo_collections as mc
from darooghe.batch.columns import is_approved
from darooghe.batch.documents import collect_documents, for_documents, row_document
from darooghe.mongo_client import connect
from darooghe.mongo_indexes import AccessPath, is_ferretdb, plan_facts
from darooghe.mongo_indexes import ensure_indexes as ensure_path_indexes
from darooghe.mongo_write import insert_new, now_ms, replace_by_id
from darooghe.schema import COMMISSION_TYPES, FIELDS, STATUSES

COLLECTION = mc.TRANSACTIONS
HOURLY = mc.TRANSACTIONS_HOURLY
ACTIVITY = mc.ACTIVITY_HOURLY
BATCH_STATE = mc.BATCH_STATE
RETENTION = dt.timedelta(hours=24)
HOUR = dt.timedelta(hours=1)
TTL_INDEX = "event_time_ttl"

ACCESS_PATHS = (
    AccessPath("date_hour", COLLECTION, ("event_date", "event_hour"), "retention of an hour; one hour's transactions"),
    AccessPath("merchant_hour", COLLECTION, ("merchant_id", "event_date", "event_hour"), "a merchant's transactions in an hour"),
    AccessPath("category_hour", COLLECTION, ("merchant_category", "event_date", "event_hour"), "a category's transactions in an hour"),
    AccessPath("customer_day", COLLECTION, ("customer_id", "event_date"), "a customer's transactions of a day (the API)"),
    AccessPath("rollup_hour", HOURLY, ("event_date", "event_hour"), "an hour's rollups: refreshed, removed; charts read a day"),
)
# `activity_hourly` holds one document per hour (25 at most): read whole, written by `_id`.


@dataclass(frozen=True)
class IndexReport:
    ttl: bool
    ttl_detail: str
    indexes: tuple[str, ...]

    def as_metadata(self) -> dict:
        return {
            "ttl_index": self.ttl,
            "ttl_detail": self.ttl_detail,
            "indexes": ", ".join(self.indexes),
        }


def _ensure_ttl(db: Database) -> tuple[bool, str]:
    coll = db[COLLECTION]
    info = coll.index_information()
    if TTL_INDEX in info and "expireAfterSeconds" in info[TTL_INDEX]:
        return True, "TTL index present"
    try:
        coll.create_index(
            [("event_time", ASCENDING)], name=TTL_INDEX, expireAfterSeconds=int(RETENTION.total_seconds())
        )
    except OperationFailure as exc:
        return False, f"the server refused a TTL index (code {exc.code}: {exc.details.get('errmsg', exc)})"
    if "expireAfterSeconds" in coll.index_information().get(TTL_INDEX, {}):
        return True, "TTL index created"
    coll.drop_index(TTL_INDEX)
    return False, "the server accepted expireAfterSeconds but did not keep it: no TTL"


def ensure_indexes(db: Database, postgres_url: str | None = None) -> IndexReport:
    """The index of every access path and, where the server supports it, the TTL index (detected).

    `postgres_url`: FerretDB's PostgreSQL, where the indexes are made in SQL (darooghe.mongo_indexes).
    """
    made = ensure_path_indexes(db, ACCESS_PATHS, postgres_url)
    ttl, detail = (False, "FerretDB 1.x has no TTL indexes (NotImplemented)") if is_ferretdb(db) else _ensure_ttl(db)
    return IndexReport(ttl, detail, tuple(sorted(made)))


# --- hour buckets ---------------------------------------------------------------------------------


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def bucket(moment: dt.datetime) -> tuple[str, int]:
    """The (event_date, event_hour) bucket of an instant, as the documents store it."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%d"), utc.hour


def buckets_between(start: dt.datetime, end: dt.datetime) -> list[tuple[str, int]]:
    """Every hour bucket that overlaps [start, end], oldest first."""
    out, hour = [], hour_of(start)
    while hour <= end:
        out.append(bucket(hour))
        hour += HOUR
    return out


def bucket_filter(date: str, hour: int) -> dict:
    return {"event_date": date, "event_hour": hour}


def bucket_id(date: str, hour: int) -> str:
    return f"{date}|{hour:02d}"


# --- loading ------------------------------------------------------------------------------------


def window_start(now: dt.datetime, retention: dt.timedelta = RETENTION) -> dt.datetime:
    return now - retention


def recent_rows(
    lake: DataFrame, now: dt.datetime, cursor: dict[int, int] | None = None
) -> DataFrame:
    """Lake rows with event_time at or after now - 24 h and, per partition, an offset after `cursor`."""
    start = window_start(now)
    rows = lake.where(F.col("event_date") >= start.strftime("%Y-%m-%d")).where(
        F.col("event_time") >= F.lit(start)
    )
    if cursor:
        after = None
        for partition, offset in cursor.items():
            cond = (F.col("kafka_partition") == partition) & (F.col("kafka_offset") > offset)
            after = cond if after is None else after | cond
        unknown = ~F.col("kafka_partition").isin(*cursor.keys())
        rows = rows.where(after | unknown)
    return rows


def with_bucket(rows: DataFrame) -> DataFrame:
    """Rows plus their UTC hour bucket (the session time zone is UTC: darooghe.spark)."""
    return rows.withColumn("bucket_date", F.date_format("event_time", "yyyy-MM-dd")).withColumn(
        "bucket_hour", F.hour("event_time")
    )


def transaction_frame(rows: DataFrame) -> DataFrame:
    """The columns of a `transactions` document, in order."""
    return with_bucket(rows).select(
        *FIELDS,
        "event_time",
        F.col("bucket_date").alias("event_date"),
        F.col("bucket_hour").alias("event_hour"),
    )


def transaction_document(row, timestamps, ingested_at: dt.datetime) -> dict:
    doc = row_document(row, timestamps)
    doc["device_info"] = {k: v for k, v in (doc.get("device_info") or {}).items() if v is not None}
    doc["ingested_at"] = ingested_at
    return {"_id": doc["transaction_id"], **doc}


def _write_partition(
    rows: Iterator, uri: str, database: str, timestamps, ingested_at, written, present
) -> None:
    client = connect(uri)
    try:
        docs = (transaction_document(row, timestamps, ingested_at) for row in rows)
        result = insert_new(client[database], COLLECTION, docs)
        written.add(result.written)
        present.add(result.already_present)
    finally:
        client.close()


# --- hourly rollups -------------------------------------------------------------------------------


def _approved(value) -> F.Column:
    return F.sum(F.when(is_approved(), value).otherwise(0))


def hourly_rollups(rows: DataFrame) -> tuple[list[dict], list[dict]]:
    """The `transactions_hourly` and `activity_hourly` documents of `rows` (whole hours of them).

    Volume counts every valid transaction; amount spent and commission only approved payments.
    """
    rows = with_bucket(rows)
    keys = [F.col("bucket_date").alias("event_date"), F.col("bucket_hour").alias("event_hour")]
    per_type = []
    for ctype in COMMISSION_TYPES:
        of_type = F.col("commission_type") == ctype
        per_type += [
            _approved(F.when(of_type, 1)).alias(f"approved_{ctype}"),
            _approved(F.when(of_type, F.col("commission_amount"))).alias(f"commission_{ctype}"),
        ]
    merchants = rows.groupBy(*keys, "merchant_id").agg(
        F.first("merchant_category").alias("merchant_category"),
        F.count(F.lit(1)).alias("transactions"),
        *[F.sum(F.when(F.col("status") == st, 1).otherwise(0)).alias(st) for st in STATUSES],
        F.sum("amount").alias("amount"),
        _approved(F.col("amount")).alias("approved_amount"),
        _approved(F.col("commission_amount")).alias("commission"),
        *per_type,
    )
    activity = rows.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("transactions"),
        F.countDistinct("customer_id").alias("active_customers"),
    )
    hourly = collect_documents(
        merchants, lambda d: f"{bucket_id(d['event_date'], d['event_hour'])}|{d['merchant_id']}"
    )
    return hourly, collect_documents(activity, lambda d: bucket_id(d["event_date"], d["event_hour"]))


def refresh_rollups(
    db: Database, lake: DataFrame, now: dt.datetime, hours: Iterable[tuple[str, int]]
) -> int:
    """Recompute the rollups of `hours` from every lake row of those hours in the window."""
    hours = sorted(set(hours))
    if not hours:
        return 0
    start = window_start(now)
    dates = sorted({d for d, _ in hours})
    chosen = None
    for date, hour in hours:
        cond = (F.col("bucket_date") == date) & (F.col("bucket_hour") == hour)
        chosen = cond if chosen is None else chosen | cond
    # The lake is partitioned by the UTC date, so this reads only the days of `hours`.
    rows = with_bucket(lake.where(F.col("event_date").isin(*dates)))
    rows = rows.where(F.col("event_time") >= F.lit(start)).where(chosen).drop("bucket_date", "bucket_hour")
    hourly, activity = hourly_rollups(rows)
    stamp = now_ms()
    for doc in (*hourly, *activity):
        doc["updated_at"] = stamp
    # A merchant with no transaction left in an hour must lose its document: clear the hours first.
    for date, hour in hours:
        db[HOURLY].delete_many(bucket_filter(date, hour))
    replace_by_id(db[HOURLY], hourly)
    replace_by_id(db[ACTIVITY], activity)
    return len(hourly) + len(activity)


@dataclass
class LoadResult:
    rows_selected: int = 0
    written: int = 0
    already_present: int = 0
    hours_refreshed: int = 0
    window_start: dt.datetime | None = None
    cursor: dict[int, int] = field(default_factory=dict)
    retention_removed: int = 0

    def as_metadata(self) -> dict:
        return {
            "rows_selected": self.rows_selected,
            "documents_inserted": self.written,
            "already_present": self.already_present,
            "hours_refreshed": self.hours_refreshed,
            "window_start": self.window_start.isoformat() if self.window_start else "",
            "cursor": str(self.cursor),
            "retention_removed": self.retention_removed,
        }


def cursor_id(lake_dir: str) -> str:
    return f"{COLLECTION}|{lake_dir}"


def read_cursor(db: Database, lake_dir: str) -> dict[int, int]:
    doc = db[BATCH_STATE].find_one({"_id": cursor_id(lake_dir)})
    return {int(k): int(v) for k, v in (doc or {}).get("offsets", {}).items()}


def write_cursor(db: Database, lake_dir: str, offsets: dict[int, int]) -> None:
    key = cursor_id(lake_dir)
    db[BATCH_STATE].delete_many({"_id": key})
    db[BATCH_STATE].insert_one(
        {
            "_id": key,
            "offsets": {str(k): v for k, v in sorted(offsets.items())},
            "updated_at": now_ms(),
        }
    )


def load_recent_transactions(
    lake: DataFrame,
    db: Database,
    uri: str,
    lake_dir: str,
    now: dt.datetime | None = None,
    log: Callable[[str], None] = print,
) -> LoadResult:
    """Insert the lake's last-24-hour transactions not loaded yet, refresh the rollups of the hours
    they fall in, apply retention; then advance the cursor."""
    now = now or dt.datetime.now(dt.UTC)
    spark = lake.sparkSession
    lake_ends = {
        r.kafka_partition: r.last
        for r in lake.groupBy("kafka_partition").agg(F.max("kafka_offset").alias("last")).collect()
    }
    cursor = read_cursor(db, lake_dir)
    if any(lake_ends.get(p, -1) < offset for p, offset in cursor.items()):
        log(
            f"transactions: the lake's offsets are behind the cursor {cursor} (a new lake?): reloading the window"
        )
        cursor = {}
    rows = recent_rows(lake, now, cursor).cache()
    try:
        hours = [(r.bucket_date, r.bucket_hour) for r in with_bucket(rows).select("bucket_date", "bucket_hour").distinct().collect()]
        prepared, timestamps = for_documents(transaction_frame(rows))
        written = spark.sparkContext.accumulator(0)
        present = spark.sparkContext.accumulator(0)
        selected = spark.sparkContext.accumulator(0)

        def count(row):
            selected.add(1)
            return row

        writer = functools.partial(
            _write_partition,
            uri=uri,
            database=db.name,
            timestamps=timestamps,
            ingested_at=now_ms(),
            written=written,
            present=present,
        )
        prepared.rdd.map(count).foreachPartition(writer)
    finally:
        rows.unpersist()
    refreshed = refresh_rollups(db, lake, now, hours)
    retention = apply_retention(db, now, log=log)
    new_cursor = {**cursor, **{int(p): int(o) for p, o in lake_ends.items()}}
    write_cursor(db, lake_dir, new_cursor)
    result = LoadResult(
        selected.value, written.value, present.value, len(hours), window_start(now), new_cursor, retention.removed
    )
    log(
        f"transactions: {result.rows_selected} lake rows in the window since {result.window_start:%Y-%m-%d %H:%M} UTC "
        f"after the cursor, {result.written} inserted, {result.already_present} already present; "
        f"rollups of {len(hours)} hours refreshed ({refreshed} documents)"
    )
    return result


# --- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionResult:
    cutoff: dt.datetime
    removed: int
    hours: int = 0

    def as_metadata(self) -> dict:
        return {"cutoff": self.cutoff.isoformat(), "documents_removed": self.removed, "hours_removed": self.hours}


def apply_retention(
    db: Database, now: dt.datetime | None = None, log: Callable[[str], None] = print
) -> RetentionResult:
    """Delete exactly the documents whose event time is more than 24 hours before `now`, one hour
    bucket per delete, and the rollups of the hours that are gone."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = window_start(now)
    first_kept = hour_of(cutoff)
    # `activity_hourly` is the catalog of the hours present: every load refreshes the rollups of
    # every hour it inserts into before it moves its cursor (a crash in between repeats the load).
    catalog = {
        (d["event_date"], d["event_hour"])
        for d in db[ACTIVITY].find({}, {"event_date": 1, "event_hour": 1})
        if "event_date" in d
    }
    removed = hours = 0
    for date, hour in sorted(b for b in catalog if bucket_id(*b) < bucket_id(*bucket(first_kept))):
        removed += db[COLLECTION].delete_many(bucket_filter(date, hour)).deleted_count
        db[HOURLY].delete_many(bucket_filter(date, hour))
        db[ACTIVITY].delete_one({"_id": bucket_id(date, hour)})
        hours += 1
    # The cutoff's own hour keeps its later documents; its rollup describes the whole hour and
    # goes when the hour is entirely older than the window.
    removed += db[COLLECTION].delete_many(
        {**bucket_filter(*bucket(first_kept)), "event_time": {"$lt": cutoff}}
    ).deleted_count
    if removed:
        log(f"transactions: retention removed {removed} documents older than {cutoff:%Y-%m-%d %H:%M:%S} UTC ({hours} whole hours)")
    return RetentionResult(cutoff, removed, hours)


# --- the dashboard queries and their plans --------------------------------------------------------


def window_dates(now: dt.datetime) -> list[str]:
    """The (one or two) UTC dates the last 24 hours fall on."""
    return sorted({d for d, _ in buckets_between(window_start(now), now)})


def dashboard_queries(
    now: dt.datetime,
    merchant_id: str = "merch_1",
    customer_id: str = "cust_1",
    category: str = "retail",
) -> dict[str, dict]:
    """One query per access path, as an explainable command: the newest hour, the newest day.
    Lists of an hour's transactions are pages (`limit`: FerretDB pushes it down with the filter)."""
    date, hour = bucket(now)
    this_hour = bucket_filter(date, hour)
    return {
        "date_hour": {"find": COLLECTION, "filter": this_hour, "limit": 200},
        "merchant_hour": {"find": COLLECTION, "filter": {"merchant_id": merchant_id, **this_hour}},
        "category_hour": {"find": COLLECTION, "filter": {"merchant_category": category, **this_hour}, "limit": 200},
        "customer_day": {"find": COLLECTION, "filter": {"customer_id": customer_id, "event_date": date}},
        "rollup_hour": {"find": HOURLY, "filter": this_hour},
    }


def explain_dashboard_queries(db: Database, now: dt.datetime) -> dict[str, dict]:
    """For each access path's query: the indexes the server's plan reads, or that it scans."""
    out = {}
    for name, command in dashboard_queries(now).items():
        plan = db.command("explain", command, verbosity="queryPlanner")
        facts = plan_facts(plan)
        out[name] = {
            "uses_index": facts["indexes"],
            "collection_scan": facts["collection_scan"] and not facts["indexes"],
            "filter_pushdown": plan.get("filterPushdown"),
            "server": "FerretDB" if "ferretdbVersion" in plan.get("serverInfo", {}) else "MongoDB",
        }
    return out
