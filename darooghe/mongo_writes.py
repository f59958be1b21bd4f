"""Idempotent bulk writes by `_id` that stay fast on FerretDB 1.x.

FerretDB 1.24 (SQLite) has no index use for upserts: every `ReplaceOne(..., upsert=True)` scans
the collection, so a bulk upsert of n documents costs O(n²) — 3,000 upserts took 10 s here while
inserting them took 0.07 s. So we look up which `_id`s exist (one `$in` query per chunk), insert the
new documents in bulk and replace only the existing ones. On MongoDB this is as correct, just not
needed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ReplaceOne
from pymongo.collection import Collection

CHUNK = 2_000


def replace_by_id(collection: Collection, documents: Sequence[dict], chunk: int = CHUNK) -> tuple[int, int]:
    """Write each document under its `_id` (insert or replace). Returns (inserted, replaced)."""
    inserted = replaced = 0
    for i in range(0, len(documents), chunk):
        part = {d["_id"]: d for d in documents[i : i + chunk]}  # last one wins within a chunk
        existing = {d["_id"] for d in collection.find({"_id": {"$in": list(part)}}, {"_id": 1})}
        fresh = [d for k, d in part.items() if k not in existing]
        if fresh:
            collection.insert_many(fresh, ordered=False)
            inserted += len(fresh)
        if existing:
            collection.bulk_write([ReplaceOne({"_id": k}, part[k]) for k in existing], ordered=False)
            replaced += len(existing)
    return inserted, replaced
