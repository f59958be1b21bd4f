"""Every MongoDB client of the project gives up on a server that stops answering mid-session.

The fault is real: a TCP relay in front of the test FerretDB forwards the handshake, then stops
forwarding (as FerretDB itself did when a bulk of upserts exhausted its connection pool).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pymongo.errors import NetworkTimeout

from darooghe.mongo_client import SOCKET_TIMEOUT_MS, connect
from darooghe_assets.resources import MongoResource

pytestmark = pytest.mark.integration


class FreezingRelay:
    """Relays 127.0.0.1:<port> to the real server until `freeze()`; then swallows everything."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if not self.frozen.is_set():
                sink.sendall(data)

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self.server.close()


def test_a_server_that_stops_answering_raises_instead_of_hanging(stack):
    relay = FreezingRelay((stack.mongo_host, stack.mongo_port))
    try:
        client = connect(f"mongodb://127.0.0.1:{relay.port}/", socketTimeoutMS=2000)
        assert client.admin.command("ping")["ok"] == 1
        relay.freeze()
        t0 = time.monotonic()
        with pytest.raises(NetworkTimeout):
            client[stack.mongo_db].things.find_one({"_id": 1})
        assert time.monotonic() - t0 < 10
        client.close()
    finally:
        relay.close()


def test_the_resource_and_the_default_client_bound_every_wait(stack):
    client = connect(stack.mongo_uri)
    assert client.options.pool_options.socket_timeout == SOCKET_TIMEOUT_MS / 1000
    assert client.options.pool_options.connect_timeout is not None
    client.close()
    with MongoResource(uri=stack.mongo_uri, database=stack.mongo_db).get_db() as db:
        assert db.client.options.pool_options.socket_timeout == SOCKET_TIMEOUT_MS / 1000
