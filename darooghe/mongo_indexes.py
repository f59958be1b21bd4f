"""Indexes that serve the documented access paths, on MongoDB 7 and on FerretDB's PostgreSQL backend.

An access path is a collection and the fields its queries compare for equality. Every query of the
time-partitioned collections is written that way, because FerretDB 1.24 pushes down to PostgreSQL
only equality on a top-level field (`$eq` or a plain value): `$gt/$lt/$in/$or` are evaluated by
FerretDB after reading the whole collection. Time is therefore a bucket (`event_date`,
`event_hour`) that queries name, and a range of time is the list of its buckets.

- MongoDB: one compound index per access path, its fields in order (IXSCAN; the TTL index is made
  separately where the server has TTL).
- FerretDB on PostgreSQL: `createIndexes` makes btree indexes on `_jsonb->'field'`, but the filter
  FerretDB pushes down is the containment `_jsonb->'field' @> '"value"'`, which a btree cannot
  serve. Measured on 200,000 documents: a Seq Scan (0.21 s for 4,000 matches, 13 s for a range)
  with those btrees present. A GIN expression index `USING gin ((_jsonb->'field') jsonb_path_ops)`
  serves exactly that predicate (Bitmap Index Scan; two fields combine with BitmapAnd: 11 ms for
  166 matches), so on FerretDB each filtered field gets one, made with SQL on the collection's
  table (found in FerretDB's metadata table of the database's schema), and no btree is made:
  unused, they would only slow every insert.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database

#: FerretDB 1.x keeps, per database (a PostgreSQL schema), one table mapping collections to tables.
FERRETDB_METADATA_TABLE = "_ferretdb_database_metadata"


@dataclass(frozen=True)
class AccessPath:
    """A query shape: `collection` filtered by equality on `fields` (index order)."""

    name: str
    collection: str
    fields: tuple[str, ...]
    used_by: str

    def index_model(self) -> IndexModel:
        return IndexModel([(f, ASCENDING) for f in self.fields], name=self.name)


def is_ferretdb(db: Database) -> bool:
    return "ferretdbVersion" in db.client.admin.command("buildInfo")


def _gin_name(table: str, field: str) -> str:
    # PostgreSQL truncates identifiers at 63 bytes; FerretDB's table names are short (name_hash).
    return f"{table}_{field}_gin"[:63]


def ferretdb_table(cursor, schema: str, collection: str) -> str | None:
    cursor.execute(
        f'SELECT _jsonb->>\'table\' FROM "{schema}"."{FERRETDB_METADATA_TABLE}" '
        "WHERE _jsonb->>'_id' = %s",
        (collection,),
    )
    row = cursor.fetchone()
    return row[0] if row else None


def ensure_indexes(db: Database, paths: Iterable[AccessPath], postgres_url: str | None) -> list[str]:
    """Create what serves `paths` on this server; returns the index names that exist for them."""
    paths = list(paths)
    if not is_ferretdb(db):
        made = []
        for collection in sorted({p.collection for p in paths}):
            present = db[collection].index_information()
            missing = [p.index_model() for p in paths if p.collection == collection and p.name not in present]
            if missing:
                db[collection].create_indexes(missing)
            made += [p.name for p in paths if p.collection == collection]
        return made
    if not postgres_url:
        return []
    import psycopg  # only FerretDB on PostgreSQL needs it

    made = []
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as conn, conn.cursor() as cur:
        for collection in sorted({p.collection for p in paths}):
            if collection not in db.list_collection_names():
                db.create_collection(collection)
            table = ferretdb_table(cur, db.name, collection)
            if table is None:
                raise RuntimeError(f"FerretDB has no PostgreSQL table for {db.name}.{collection}")
            fields = sorted({f for p in paths if p.collection == collection for f in p.fields})
            for field in fields:
                name = _gin_name(table, field)
                cur.execute(
                    f'CREATE INDEX IF NOT EXISTS "{name}" ON "{db.name}"."{table}" '
                    f"USING gin ((_jsonb->'{field}') jsonb_path_ops)"
                )
                made.append(name)
            cur.execute(f'ANALYZE "{db.name}"."{table}"')
    return made


# --- plans ---------------------------------------------------------------------------------------


def plan_facts(plan: dict) -> dict:
    """From an `explain` answer (MongoDB's or FerretDB's PostgreSQL plan): the indexes the plan
    reads and whether it scans the whole collection."""
    facts = {"indexes": set(), "scan": False}

    def walk(node) -> None:
        if isinstance(node, dict):
            stage = node.get("stage") or node.get("Node Type")
            if stage == "IXSCAN" or (isinstance(stage, str) and "Index" in stage and "Scan" in stage):
                facts["indexes"].add(node.get("indexName") or node.get("Index Name") or "?")
            elif stage in ("COLLSCAN", "Seq Scan"):
                facts["scan"] = True
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan.get("queryPlanner", plan))
    walk(plan.get("stages", []))
    return {"indexes": sorted(facts["indexes"]), "collection_scan": facts["scan"]}
