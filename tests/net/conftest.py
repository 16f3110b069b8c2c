"""Fixtures of the network tests: real local HTTP servers, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _support.localhttp import LocalServer, Responder


@pytest.fixture()
def local_server() -> Iterator[Callable[..., LocalServer]]:
    """Factory of started :class:`LocalServer` instances, all stopped at teardown."""
    servers: list[LocalServer] = []

    def make(responder: Responder | None = None) -> LocalServer:
        server = LocalServer(responder).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
