"""Idempotent MongoDB writes that stay inside what FerretDB 1.x (our local MongoDB) does well.

Every document has a deterministic `_id`, so writing the same result twice leaves the same
documents. Two ways to write:

- `replace_collection`: the collection becomes exactly the given documents. They are inserted into
  a staging collection of this run, which then takes the collection's place: `renameCollection`
  with `dropTarget` where the server has it (MongoDB: atomic), else drop + rename (FerretDB 1.x
  refuses `dropTarget`; readers may find the collection missing for the instant in between).
  Readers never see a half-written result, and a run that fails leaves the old one in place.
- `insert_new`: documents that never change once written (a transaction, a fraud alert) are
  inserted unordered; those already present are refused by the unique `_id` (error 11000) and
  counted, not rewritten.
- `replace_by_id`: documents that may be rewritten (a live metric window) replace the ones with
  their `_id`: the existing `_id`s are read once (one projected scan), those rewritten are deleted
  and every chunk is inserted in bulk. Not atomic per document: a crash between the two leaves the
  chunk missing until the caller's next run rewrites it, which every caller does (they commit their
  input position after the write).

Why not `ReplaceOne(upsert=True)` in `bulk_write`: FerretDB 1.24 on SQLite stops answering when
one bulk write replaces more than about a hundred existing documents (measured: 100 pass, 120 hang
the server until it is restarted), every upsert is a full scan (3,000 upserts took 10.5 s against
0.07 s to insert them), and every filtered delete is a full scan on it (no index use).
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


def swap_collection(db: Database, staging: str, name: str) -> None:
    """Put collection `staging` in the place of `name` (which may not exist)."""
    admin = db.client.admin
    try:
        admin.command(
            "renameCollection", f"{db.name}.{staging}", to=f"{db.name}.{name}", dropTarget=True
        )
        return
    except OperationFailure as exc:
        if exc.code != NOT_IMPLEMENTED:
            raise
    db.drop_collection(name)
    admin.command("renameCollection", f"{db.name}.{staging}", to=f"{db.name}.{name}")


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
    staging = f"{name}__staging_{uuid.uuid4().hex[:12]}"
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


def replace_by_id(
    collection: Collection, documents: Sequence[dict], chunk: int = BATCH_SIZE
) -> tuple[int, int]:
    """Write each document under its `_id` (insert or replace). Returns (inserted, replaced)."""
    inserted = replaced = 0
    present = {d["_id"] for d in collection.find({}, {"_id": 1})} if documents else set()
    for i in range(0, len(documents), chunk):
        part = {d["_id"]: d for d in documents[i : i + chunk]}  # last one wins within a chunk
        existing = [k for k in part if k in present]
        present.update(part)
        if existing:
            collection.delete_many({"_id": {"$in": existing}})
        collection.insert_many(list(part.values()), ordered=False)
        replaced += len(existing)
        inserted += len(part) - len(existing)
    return inserted, replaced
