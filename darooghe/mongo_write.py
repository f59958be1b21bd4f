"""Idempotent MongoDB writes that stay inside what FerretDB 1.x (our local MongoDB) does well.

Every document has a deterministic `_id`, so writing the same result twice leaves the same
documents. Two ways to write:

- `replace_collection`: the collection becomes exactly the given documents. They are inserted into
  a staging collection of this run, which then takes the collection's place: `renameCollection`
  with `dropTarget` where the server has it (MongoDB: atomic). FerretDB 1.24 refuses `dropTarget`
  (NotImplemented, measured on its SQLite and PostgreSQL backends), so there the old collection is
  first renamed aside, the staging one renamed in, and only then the old copy dropped; if the second
  rename fails the old copy is renamed back. The last good copy is never dropped before the new one
  is in place (readers may find the collection missing for the instant between the two renames).
  Staging and set-aside collections left by a crashed run are cleaned (or restored) by the next.
- `insert_new`: documents that never change once written (a transaction, a fraud alert) are
  inserted unordered; those already present are refused by the unique `_id` (error 11000) and
  counted, not rewritten.
- `replace_by_id`: documents that may be rewritten (a live metric window) replace the ones with
  their `_id`: each chunk is inserted in bulk, and those refused as present are deleted and
  inserted again. Not atomic per document: a crash between the two leaves those documents missing
  until the caller's next run rewrites them, which every caller does (they commit their input
  position after the write).

Why not `ReplaceOne(upsert=True)` in `bulk_write`: FerretDB 1.24 stops answering when one bulk
write upserts many documents — measured on SQLite (100 pass, 120 hang the server until restarted)
and again on PostgreSQL (3,000 upserts: every one took a pooled connection, 50 sat idle, the server
hung until restarted). A bulk of `DeleteOne` by `_id` does not hang there but costs 5.5 ms each
(6,000 in 32.8 s), while one `delete_many` with `$in` over them took 3.3 s; so existing documents
are deleted with `$in` and every chunk is inserted in bulk.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from pymongo import IndexModel
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, OperationFailure

BATCH_SIZE = 5000
DUPLICATE_KEY = 11000


def now_ms() -> dt.datetime:
    """The current UTC time truncated to the millisecond (BSON's precision), so equality holds."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def batches(items: Iterable[dict], size: int = BATCH_SIZE) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True)
class WriteResult:
    collection: str
    written: int
    previous: int = 0
    already_present: int = 0

    def as_metadata(self) -> dict:
        return {
            "documents_written": self.written,
            "documents_before": self.previous,
            "already_present": self.already_present,
        }


NOT_IMPLEMENTED = 238


STAGING = "__staging_"
PREVIOUS = "__previous_"
#: a staging collection older than this belongs to a run that died
STALE_AFTER = dt.timedelta(hours=1)


def _rename(db: Database, source: str, target: str, **options) -> None:
    db.client.admin.command("renameCollection", f"{db.name}.{source}", to=f"{db.name}.{target}", **options)


def swap_collection(db: Database, staging: str, name: str) -> None:
    """Put collection `staging` in the place of `name` (which may not exist), never dropping the
    last good copy of `name` before the new one is in place."""
    try:
        _rename(db, staging, name, dropTarget=True)
        return
    except OperationFailure as exc:
        if exc.code != NOT_IMPLEMENTED:
            raise
    if name not in db.list_collection_names():
        _rename(db, staging, name)
        return
    previous = f"{name}{PREVIOUS}{uuid.uuid4().hex[:12]}"
    _rename(db, name, previous)
    try:
        _rename(db, staging, name)
    except BaseException:
        _rename(db, previous, name)
        raise
    db.drop_collection(previous)


def _staging_name(name: str, now: dt.datetime) -> str:
    return f"{name}{STAGING}{int(now.timestamp())}_{uuid.uuid4().hex[:8]}"


def clean_leftovers(db: Database, name: str, now: dt.datetime | None = None) -> list[str]:
    """Drop staging collections of `name` left by runs that died; put back a set-aside copy when
    `name` itself is missing (a run died between the two renames). Returns what it did."""
    now = now or dt.datetime.now(dt.UTC)
    done = []
    names = db.list_collection_names()
    for other in names:
        if other.startswith(f"{name}{STAGING}"):
            try:
                started = dt.datetime.fromtimestamp(int(other[len(name) + len(STAGING):].split("_")[0]), dt.UTC)
            except ValueError:
                started = dt.datetime.min.replace(tzinfo=dt.UTC)
            if now - started > STALE_AFTER:
                db.drop_collection(other)
                done.append(f"dropped {other}")
    for other in sorted(n for n in names if n.startswith(f"{name}{PREVIOUS}")):
        if name not in db.list_collection_names():
            _rename(db, other, name)
            done.append(f"restored {name} from {other}")
        else:
            db.drop_collection(other)
            done.append(f"dropped {other}")
    return done


def replace_collection(
    db: Database,
    name: str,
    documents: Iterable[dict],
    stamp: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    indexes: Iterable[IndexModel] = (),
) -> WriteResult:
    """Make collection `name` hold exactly `documents` (each with an `_id`), stamped `updated_at`."""
    stamp = stamp or now_ms()
    clean_leftovers(db, name, stamp)
    staging = _staging_name(name, stamp)
    written = 0
    try:
        for batch in batches(documents, batch_size):
            for doc in batch:
                doc["updated_at"] = stamp
            try:
                db[staging].insert_many(batch, ordered=False)
            except BulkWriteError as exc:
                dup = next(
                    (
                        e
                        for e in exc.details.get("writeErrors", [])
                        if e.get("code") == DUPLICATE_KEY
                    ),
                    None,
                )
                if dup is None:
                    raise
                raise ValueError(
                    f"{name}: _id {dup.get('keyValue', dup.get('errmsg'))} occurs twice in one result"
                ) from None
            written += len(batch)
        if written == 0:
            db.create_collection(staging)
        indexes = list(indexes)
        if indexes:
            db[staging].create_indexes(indexes)
        previous = db[name].count_documents({}) if name in db.list_collection_names() else 0
        swap_collection(db, staging, name)
    except BaseException:
        db.drop_collection(staging)
        raise
    return WriteResult(name, written, previous)


def insert_new(
    db: Database, name: str, documents: Iterable[dict], batch_size: int = 5000
) -> WriteResult:
    """Insert documents whose `_id` is not in the collection yet; count the ones that were."""
    coll = db[name]
    written = present = 0
    for batch in batches(documents, batch_size):
        try:
            written += len(coll.insert_many(batch, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if other:
                raise
            present += len(errors)
            written += len(batch) - len(errors)
    return WriteResult(name, written, 0, present)


#: above this many rewritten documents in a chunk, one `delete_many($in)` beats one delete per _id
DELETE_ONE_LIMIT = 500


def replace_by_id(
    collection: Collection, documents: Sequence[dict], chunk: int = BATCH_SIZE
) -> tuple[int, int]:
    """Write each document under its `_id` (insert or replace). Returns (inserted, replaced).

    Each chunk is inserted first; the `_id`s refused as present are the rewritten ones: they are
    deleted (by `_id`, an indexed lookup each, or one `$in` for many) and inserted again. No read
    of the collection's `_id`s, so the cost follows the documents written, not the collection.
    """
    inserted = replaced = 0
    for i in range(0, len(documents), chunk):
        part = {d["_id"]: d for d in documents[i : i + chunk]}  # last one wins within a chunk
        batch = list(part.values())
        try:
            collection.insert_many(batch, ordered=False)
            inserted += len(batch)
            continue
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            existing = [batch[e["index"]]["_id"] for e in errors]
        if len(existing) <= DELETE_ONE_LIMIT:
            for key in existing:
                collection.delete_one({"_id": key})
        else:
            collection.delete_many({"_id": {"$in": existing}})
        collection.insert_many([part[k] for k in existing], ordered=False)
        replaced += len(existing)
        inserted += len(batch) - len(existing)
    return inserted, replaced
