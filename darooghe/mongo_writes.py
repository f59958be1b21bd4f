"""Idempotent bulk writes by `_id` that stay fast on FerretDB 1.x.

FerretDB 1.24 (SQLite) has no index use for upserts: every `ReplaceOne(..., upsert=True)` scans
the collection, so a bulk upsert of n documents costs O(n²) — 3,000 upserts took 10 s here while
inserting them took 0.07 s — and a bulk write replacing more than about 100 existing documents was
seen to hang the server. So we read the existing `_id`s once (one projected scan), delete those
that are rewritten and insert every chunk in bulk. Not atomic: a crash between the two leaves the chunk missing
until the caller's next run rewrites it, which every caller does (they commit their input position
after the write).
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.collection import Collection

CHUNK = 2_000


def replace_by_id(collection: Collection, documents: Sequence[dict], chunk: int = CHUNK) -> tuple[int, int]:
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
