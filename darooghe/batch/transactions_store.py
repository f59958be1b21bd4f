"""The detailed `transactions` collection: the last 24 hours of valid transactions, for dashboards.

Window: 24 hours back from the wall clock (now), both when loading and when removing — the
collection answers "what happened in the last day", and a replayed history older than that
belongs in the lake and the long-term summaries, not here. (The demo's history ends now, so its
last day is loaded.)

Documents: `_id` = transaction_id, every event field (darooghe.schema.FIELDS; `device_info` is {}
for pos and nfc), `event_time` (UTC datetime), `event_date` ("YYYY-MM-DD", UTC), `event_hour`
(0-23, UTC), `ingested_at` (when the document was written). A transaction never changes once
valid, so loading inserts only documents not yet present (darooghe.mongo_write.insert_new).

Loading is incremental: a cursor document in BATCH_STATE remembers, per Kafka partition, the last
lake offset loaded; each load reads the lake rows after it (within the window), writes them from
the Spark executors (foreachPartition, one client per partition, unordered batched inserts), and
then advances the cursor. A load that fails before moving the cursor is simply repeated: the rows
already written are refused as duplicates and counted.

Partitioning strategy: the collection is partitioned by time. Every document carries its time
bucket (event_date, event_hour) and `event_time`; retention is a range delete on the leading time
key (`event_time < now - 24 h`), and every dashboard query is bounded by a time range first,
then narrowed by merchant, category or customer. The indexes follow that: {event_time} (retention,
time-window scans; it is the TTL index where the server has TTL), {event_date, event_hour}
(volume per hour), {merchant_id, event_time}, {merchant_category, event_time},
{customer_id, event_time} (drill-downs within the window). On a sharded MongoDB the same reasoning
gives the shard key {merchant_id: "hashed"} for write spread, with event_time-bounded queries.
FerretDB 1.x on SQLite creates these indexes but its planner uses only `_id` (explain shows a
SCAN with filterPushdown false); on MongoDB the same queries use them (IXSCAN) — see
`explain_dashboard_queries`.

TTL: an index with expireAfterSeconds is requested on event_time; the server's answer decides
(FerretDB 1.x refuses it with NotImplemented; an index created without the option means the server
ignored it). Where TTL is missing, the hourly retention run is what removes old documents; where
it exists, retention still runs and finds (almost) nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from darooghe.batch.documents import for_documents, row_document
from darooghe.mongo_write import insert_new, now_ms
from darooghe.schema import FIELDS

COLLECTION = "transactions"
BATCH_STATE = "batch_state"
RETENTION = dt.timedelta(hours=24)
TTL_INDEX = "event_time_ttl"
TIME_INDEX = "event_time"
INDEXES = (
    IndexModel([("event_date", ASCENDING), ("event_hour", ASCENDING)], name="event_date_hour"),
    IndexModel([("merchant_id", ASCENDING), ("event_time", DESCENDING)], name="merchant_time"),
    IndexModel(
        [("merchant_category", ASCENDING), ("event_time", DESCENDING)], name="category_time"
    ),
    IndexModel([("customer_id", ASCENDING), ("event_time", DESCENDING)], name="customer_time"),
)
NOT_IMPLEMENTED = 238


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


def ensure_indexes(db: Database) -> IndexReport:
    """Create the dashboard indexes and, where the server supports it, the TTL index (detected)."""
    coll = db[COLLECTION]
    present = coll.index_information()
    # Only the missing ones: FerretDB 1.24 drops the connection (a server-side panic) when
    # createIndexes names indexes that already exist.
    missing = [model for model in INDEXES if model.document["name"] not in present]
    if missing:
        coll.create_indexes(missing)
    info = coll.index_information()
    ttl, detail = False, ""
    if TTL_INDEX in info and "expireAfterSeconds" in info[TTL_INDEX]:
        ttl, detail = True, "TTL index present"
    else:
        try:
            coll.create_index(
                [("event_time", ASCENDING)],
                name=TTL_INDEX,
                expireAfterSeconds=int(RETENTION.total_seconds()),
            )
            info = coll.index_information()
            if "expireAfterSeconds" in info.get(TTL_INDEX, {}):
                ttl, detail = True, "TTL index created"
            else:
                coll.drop_index(TTL_INDEX)
                detail = "the server accepted expireAfterSeconds but did not keep it: no TTL"
        except OperationFailure as exc:
            detail = f"the server refused a TTL index (code {exc.code}: {exc.details.get('errmsg', exc)})"
    if not ttl and TIME_INDEX not in coll.index_information():
        coll.create_index([("event_time", ASCENDING)], name=TIME_INDEX)
    return IndexReport(ttl, detail, tuple(sorted(coll.index_information())))


# --- loading ------------------------------------------------------------------------------------


def window_start(now: dt.datetime, retention: dt.timedelta = RETENTION) -> dt.datetime:
    return now - retention


def recent_rows(
    lake: DataFrame, now: dt.datetime, cursor: dict[int, int] | None = None
) -> DataFrame:
    """Lake rows with event_time in [now - 24 h, now] and, per partition, an offset after `cursor`."""
    start = window_start(now)
    rows = lake.where(F.col("event_date") >= start.strftime("%Y-%m-%d")).where(
        (F.col("event_time") >= F.lit(start)) & (F.col("event_time") <= F.lit(now))
    )
    if cursor:
        after = None
        for partition, offset in cursor.items():
            cond = (F.col("kafka_partition") == partition) & (F.col("kafka_offset") > offset)
            after = cond if after is None else after | cond
        unknown = ~F.col("kafka_partition").isin(*cursor.keys())
        rows = rows.where(after | unknown)
    return rows


def transaction_frame(rows: DataFrame) -> DataFrame:
    """The columns of a `transactions` document, in order."""
    return rows.select(
        *FIELDS,
        "event_time",
        F.date_format("event_time", "yyyy-MM-dd").alias("event_date"),
        F.hour("event_time").alias("event_hour"),
    )


def transaction_document(row, timestamps, ingested_at: dt.datetime) -> dict:
    doc = row_document(row, timestamps)
    doc["device_info"] = {k: v for k, v in (doc.get("device_info") or {}).items() if v is not None}
    doc["ingested_at"] = ingested_at
    return {"_id": doc["transaction_id"], **doc}


def _write_partition(
    rows: Iterator, uri: str, database: str, timestamps, ingested_at, written, present
) -> None:
    client = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        docs = (transaction_document(row, timestamps, ingested_at) for row in rows)
        result = insert_new(client[database], COLLECTION, docs)
        written.add(result.written)
        present.add(result.already_present)
    finally:
        client.close()


@dataclass
class LoadResult:
    rows_selected: int = 0
    written: int = 0
    already_present: int = 0
    window_start: dt.datetime | None = None
    cursor: dict[int, int] = field(default_factory=dict)

    def as_metadata(self) -> dict:
        return {
            "rows_selected": self.rows_selected,
            "documents_inserted": self.written,
            "already_present": self.already_present,
            "window_start": self.window_start.isoformat() if self.window_start else "",
            "cursor": str(self.cursor),
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
    """Insert the lake's last-24-hour transactions not loaded yet; advance the cursor."""
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
    rows = recent_rows(lake, now, cursor)
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
    new_cursor = {**cursor, **{int(p): int(o) for p, o in lake_ends.items()}}
    write_cursor(db, lake_dir, new_cursor)
    result = LoadResult(selected.value, written.value, present.value, window_start(now), new_cursor)
    log(
        f"transactions: {result.rows_selected} lake rows in the window since {result.window_start:%Y-%m-%d %H:%M} UTC "
        f"after the cursor, {result.written} inserted, {result.already_present} already present"
    )
    return result


# --- retention ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionResult:
    cutoff: dt.datetime
    removed: int

    def as_metadata(self) -> dict:
        return {"cutoff": self.cutoff.isoformat(), "documents_removed": self.removed}


def apply_retention(db: Database, now: dt.datetime | None = None) -> RetentionResult:
    """Delete the documents whose event time is more than 24 hours before `now`."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = window_start(now)
    removed = db[COLLECTION].delete_many({"event_time": {"$lt": cutoff}}).deleted_count
    return RetentionResult(cutoff, removed)


# --- the dashboard queries and their plans --------------------------------------------------------


def dashboard_queries(
    since: dt.datetime,
    merchant_id: str = "merch_1",
    customer_id: str = "cust_1",
    category: str = "retail",
) -> dict[str, dict]:
    """The queries dashboards run on the detailed collection, as explainable commands."""
    in_window = {"event_time": {"$gte": since}}
    return {
        "volume_by_hour": {
            "aggregate": COLLECTION,
            "pipeline": [
                {"$match": in_window},
                {
                    "$group": {
                        "_id": {"event_date": "$event_date", "event_hour": "$event_hour"},
                        "transactions": {"$sum": 1},
                    }
                },
            ],
            "cursor": {},
        },
        "top_merchants_by_commission": {
            "aggregate": COLLECTION,
            "pipeline": [
                {"$match": {**in_window, "status": "approved"}},
                {"$group": {"_id": "$merchant_id", "commission": {"$sum": "$commission_amount"}}},
                {"$sort": {"commission": -1}},
                {"$limit": 5},
            ],
            "cursor": {},
        },
        "merchant_drilldown": {
            "find": COLLECTION,
            "filter": {"merchant_id": merchant_id, **in_window},
            "sort": {"event_time": -1},
        },
        "category_window": {
            "find": COLLECTION,
            "filter": {"merchant_category": category, **in_window},
        },
        "customer_activity": {
            "find": COLLECTION,
            "filter": {"customer_id": customer_id, **in_window},
        },
    }


def _plan_facts(node, facts: dict) -> None:
    if isinstance(node, dict):
        stage = node.get("stage")
        if stage == "IXSCAN":
            facts["indexes"].add(node.get("indexName", "?"))
        elif stage == "COLLSCAN":
            facts["collscan"] = True
        for value in node.values():
            _plan_facts(value, facts)
    elif isinstance(node, list):
        for value in node:
            _plan_facts(value, facts)
    elif isinstance(node, str):
        if "USING INDEX" in node or "USING COVERING INDEX" in node:
            facts["indexes"].add(node.split("USING", 1)[1].strip())
        elif node.startswith("id=") and "SCAN" in node:
            facts["collscan"] = True


def explain_dashboard_queries(db: Database, since: dt.datetime) -> dict[str, dict]:
    """For each dashboard query: the index the server's plan uses, or that it scans the collection,
    with FerretDB's pushdown flags when present."""
    out = {}
    for name, command in dashboard_queries(since).items():
        plan = db.command("explain", command, verbosity="queryPlanner")
        facts = {"indexes": set(), "collscan": False}
        _plan_facts(plan.get("queryPlanner", plan), facts)
        _plan_facts(plan.get("stages", []), facts)
        out[name] = {
            "uses_index": sorted(facts["indexes"]),
            "collection_scan": facts["collscan"] and not facts["indexes"],
            "filter_pushdown": plan.get("filterPushdown"),
            "server": "FerretDB" if "ferretdbVersion" in plan.get("serverInfo", {}) else "MongoDB",
        }
    return out
