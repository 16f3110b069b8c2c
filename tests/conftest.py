"""Shared fixtures: every test leaves no pykka actor behind."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest
from _support.forkserver import ForkServer
from _support.support import RELEASE_HANGS


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    RELEASE_HANGS.clear()
    yield
    RELEASE_HANGS.set()
    pykka.ActorRegistry.stop_all(block=True, timeout=10)


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer]:
    """One fork server for the session's kill loops: the daemon's imports are paid once."""
    with ForkServer() as server:
        yield server
