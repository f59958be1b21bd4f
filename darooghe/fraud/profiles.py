"""Customers' historical average amounts (AMOUNT_ANOMALY), and how a running job picks up new ones.

Sources: the batch layer's MongoDB collection `customer_profiles` (`customer_id`, `avg_amount` of
approved transactions, `updated_at`) or a JSONL file of `{"customer_id", "avg_amount"}` lines.

Refresh without restarting the query: the driver compares the source's fingerprint (file: mtime
and size; collection: document count and latest `updated_at`) at the start of a micro-batch, at
most once per `refresh_seconds`, and when it changed writes a new snapshot file (write + atomic
rename). The stateful processor on the executors re-reads the snapshot when a task starts (cached
per Python worker by mtime), so a re-materialised `customer_profiles` is used from the first
micro-batch that starts after the next check: a delay of at most `refresh_seconds` plus one batch.
Transactions judged before that keep their verdict (each is judged once, on arrival).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import ClassVar

from darooghe import mongo_collections as mc
from darooghe.config import Settings, load_settings
from darooghe.records import json_object

PROFILES_COLLECTION = mc.CUSTOMER_PROFILES


class ProfilesError(ValueError):
    """A profiles source that cannot be read; the message names it and what was expected."""


def _average(where: str, customer_id, avg) -> tuple[str, float]:
    if not isinstance(customer_id, str) or not customer_id:
        raise ProfilesError(f"{where}: customer_id must be a non-empty string, got {customer_id!r}")
    if isinstance(avg, bool) or not isinstance(avg, (int, float)):
        raise ProfilesError(f"{where}: avg_amount must be a number, got {avg!r}")
    return customer_id, float(avg)


def load_profiles_file(path: str | Path) -> dict[str, float]:
    """customer_id -> avg_amount from a JSONL profiles file."""
    path = Path(path)
    if not path.is_file():
        raise ProfilesError(
            f"{path}: no such profiles file (expected JSONL of customer_id, avg_amount)"
        )
    averages: dict[str, float] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            obj = json_object(line, where, ProfilesError)
            cid, avg = _average(where, obj.get("customer_id"), obj.get("avg_amount"))
            averages[cid] = avg
    return averages


def write_profiles_file(averages: dict[str, float], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for cid, avg in sorted(averages.items()):
            fh.write(json.dumps({"customer_id": cid, "avg_amount": avg}) + "\n")


class ProfileSource:
    """Where averages come from: a file when `path` is given, else MongoDB `customer_profiles`."""

    def __init__(self, path: str | Path | None = None, settings: Settings | None = None) -> None:
        self.path = Path(path) if path else None
        self.settings = settings or load_settings()

    def describe(self) -> str:
        if self.path:
            return f"file {self.path}"
        return f"MongoDB {self.settings.mongo_db}.{PROFILES_COLLECTION}"

    def _collection(self):
        from darooghe.mongo_client import connect

        client = connect(self.settings.mongo_uri, serverSelectionTimeoutMS=3000)
        return client, client[self.settings.mongo_db][PROFILES_COLLECTION]

    def fingerprint(self) -> str:
        """Changes whenever the averages may have changed."""
        if self.path:
            st = self.path.stat()
            return f"{st.st_mtime_ns}:{st.st_size}"
        client, coll = self._collection()
        try:
            latest = list(coll.find({}, {"updated_at": 1}).sort("updated_at", -1).limit(1))
            stamp = latest[0].get("updated_at") if latest else None
            return f"{coll.count_documents({})}:{stamp}"
        finally:
            client.close()

    def load(self) -> dict[str, float]:
        if self.path:
            return load_profiles_file(self.path)
        client, coll = self._collection()
        try:
            if PROFILES_COLLECTION not in coll.database.list_collection_names():
                # Empty averages would quietly stop AMOUNT_ANOMALY from judging anyone.
                raise LookupError(
                    f"{self.describe()} is missing: run the batch layer (customer_profiles); "
                    "AMOUNT_ANOMALY judges no customer without it"
                )
            averages = {}
            for doc in coll.find({}, {"customer_id": 1, "avg_amount": 1}):
                cid = doc.get("customer_id") or doc.get("_id")
                if doc.get("avg_amount") is None:
                    continue  # a profile without approved transactions: no history to judge by
                cid, avg = _average(
                    f"{self.describe()} _id={doc.get('_id')!r}", cid, doc["avg_amount"]
                )
                averages[cid] = avg
            return averages
        finally:
            client.close()


class ProfileSnapshot:
    """The averages file the stateful processor reads: a JSON object customer_id -> average."""

    _cache: ClassVar[
        dict[str, tuple[int, dict[str, float]]]
    ] = {}  # per Python worker: path -> (mtime, data)

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def write(self, averages: dict[str, float]) -> None:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(averages, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, target)

    def read(self) -> dict[str, float]:
        """The current snapshot; re-read only when the file changed. Missing file -> no history."""
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return {}
        cached = self._cache.get(self.path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        with open(self.path, encoding="utf-8") as fh:
            data = json.load(fh)
        self._cache[self.path] = (mtime, data)
        return data


class ProfileRefresher:
    """Driver side: keep the snapshot in step with the source (see the module docstring)."""

    def __init__(
        self,
        source: ProfileSource,
        snapshot: ProfileSnapshot,
        refresh_seconds: float = 30.0,
        log=print,
    ) -> None:
        self.source = source
        self.snapshot = snapshot
        self.refresh_seconds = refresh_seconds
        self.log = log
        self._fingerprint: str | None = None
        self._checked = 0.0
        self.customers = 0
        self.loaded_at: float | None = None

    def refresh(self, force: bool = False) -> bool:
        """Reload when the source changed; returns True when a new snapshot was written."""
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return False
        self._checked = now
        try:
            fp = self.source.fingerprint()
            if fp == self._fingerprint:
                return False
            averages = self.source.load()
        except Exception as exc:  # noqa: BLE001 — a down database must not stop fraud detection
            self.log(
                f"profiles: cannot read {self.source.describe()} ({exc}); keeping the previous snapshot"
            )
            if not Path(self.snapshot.path).exists():
                self.snapshot.write({})
            return False
        self.snapshot.write(averages)
        self._fingerprint = fp
        self.customers = len(averages)
        self.loaded_at = time.time()
        self.log(f"profiles: {len(averages)} customer averages from {self.source.describe()}")
        return True
