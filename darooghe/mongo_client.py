"""One way to open a MongoDB client, with every wait bounded.

pymongo's default socket timeout is none: a server that accepts the connection and then hangs
(FerretDB did, on a bulk write of many upserts) blocks the caller forever — a sink, a storage load,
the fraud job's profile refresh. Every client of the project is made here, so a hung server
surfaces as a `NetworkTimeout` the caller can fail on and its supervisor can restart.
"""

from __future__ import annotations

from pymongo import MongoClient

#: selecting a server / opening a connection
CONNECT_TIMEOUT_MS = 10_000
#: one operation's reply (a batch of 5,000 inserts takes well under a second when healthy)
SOCKET_TIMEOUT_MS = 120_000


def connect(uri: str, **overrides) -> MongoClient:
    options = {
        "serverSelectionTimeoutMS": CONNECT_TIMEOUT_MS,
        "connectTimeoutMS": CONNECT_TIMEOUT_MS,
        "socketTimeoutMS": SOCKET_TIMEOUT_MS,
        "tz_aware": True,
        **overrides,
    }
    return MongoClient(uri, **options)
