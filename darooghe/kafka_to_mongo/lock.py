"""One writer at a time per sink: a lease document in MongoDB.

Two runs of one sink at once (the sensor's and one by hand, or a retry beside a run still going)
would each rewrite documents from what they read, and the error summary's clean-up would delete
the documents of the other. So a sink holds the lease `<collection>|<topic>` in `sink_locks` while
it runs; a second run waits for it and then gives up with an error naming the holder. The lease
expires, so a run that died never blocks the sink for good, and the holder renews it at each
chunk; a holder that finds its lease taken stops before writing anything more. A holder that was
a process of this host and is gone (killed with its database, darooghe_tests/faults) is taken over
at once.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psutil
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from darooghe import mongo_collections as mc

SINK_LOCKS = mc.SINK_LOCKS
#: Seconds a lease lasts without renewal: far longer than one chunk takes.
LEASE_SECONDS = 300.0
#: Seconds a run waits for the lease before it gives up.
WAIT_SECONDS = 120.0


class SinkBusyError(RuntimeError):
    """Another run holds the sink's lease."""


class SinkLockLost(RuntimeError):
    """The lease expired and another run took it: this run must not write on."""


class Lease:
    def __init__(self, db: Database, name: str, owner: str, seconds: float):
        self.db, self.name, self.owner, self.seconds = db, name, owner, seconds

    def renew(self) -> None:
        result = self.db[SINK_LOCKS].update_one(
            {"_id": self.name, "owner": self.owner},
            {"$set": {"expires_at": datetime.now(UTC) + timedelta(seconds=self.seconds)}},
        )
        if result.matched_count == 0:
            raise SinkLockLost(f"sink lease {self.name!r} of {self.owner} expired and was taken")


def _take_over_if_holder_died(coll, name: str) -> bool:
    """Remove the lease of a holder that was a process on this host and is gone (killed, or its
    database vanished under it so it could not release): waiting out LEASE_SECONDS would stall
    the sink for minutes after every crash. Returns True when it removed one."""
    holder = coll.find_one({"_id": name}) or {}
    host, _, rest = str(holder.get("owner", "")).partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    if psutil.pid_exists(int(pid)):
        return False
    return coll.delete_one({"_id": name, "owner": holder["owner"]}).deleted_count == 1


@contextmanager
def sink_lease(
    db: Database,
    name: str,
    wait_seconds: float = WAIT_SECONDS,
    lease_seconds: float = LEASE_SECONDS,
    poll_seconds: float = 0.5,
) -> Iterator[Lease]:
    """Hold the lease `name` for the block; wait up to `wait_seconds` for a holder to finish."""
    coll = db[SINK_LOCKS]
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_seconds
    while True:
        now = datetime.now(UTC)
        coll.delete_one({"_id": name, "expires_at": {"$lt": now}})  # a dead holder's lease
        try:
            coll.insert_one(
                {
                    "_id": name,
                    "owner": owner,
                    "acquired_at": now,
                    "expires_at": now + timedelta(seconds=lease_seconds),
                }
            )
            break
        except DuplicateKeyError:
            if _take_over_if_holder_died(coll, name):
                continue
            if time.monotonic() >= deadline:
                holder = coll.find_one({"_id": name}) or {}
                raise SinkBusyError(
                    f"sink {name!r} is busy: {holder.get('owner', 'another run')} holds it since "
                    f"{holder.get('acquired_at')} (lease until {holder.get('expires_at')}); "
                    f"waited {wait_seconds:.0f} s"
                ) from None
            time.sleep(poll_seconds)
    try:
        yield Lease(db, name, owner, lease_seconds)
    finally:
        coll.delete_one({"_id": name, "owner": owner})
