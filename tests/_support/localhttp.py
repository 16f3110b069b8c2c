"""Real aiohttp servers on 127.0.0.1 (ephemeral ports) for the network tests
(imported as ``net.localhttp``: ``tests/`` is on the test path).

:class:`LocalServer` runs an ``aiohttp.web`` app on its own thread and event loop, records
every request, and answers with whatever its ``responder`` says (status, JSON body, delay).
Nothing here mocks HTTP: the code under test talks to a real socket.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Answer:
    """What to answer: status, a JSON-able body (or raw bytes), and an optional delay."""

    status: int = 200
    body: Any = None
    delay: float = 0.0


Responder = Callable[[Recorded], Answer]


class ThreadedServer:
    """An aiohttp application on 127.0.0.1:<free port>, served by its own loop in a thread;
    ``add_routes`` puts the routes on the application (a subclass passes its own method)."""

    def __init__(self, add_routes: Callable[[web.Application], None]) -> None:
        self._add_routes = add_routes
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), f"{type(self).__name__} did not start"
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._serve(ready))
        loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application()
        self._add_routes(app)
        # Short shutdown: a test's slow answer must not hold up teardown.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._stop = asyncio.Event()
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(10)


class LocalServer(ThreadedServer):
    """An aiohttp server on 127.0.0.1:<free port>, in a thread; see the module docstring."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or (lambda _r: Answer(200, {"ok": True}))
        self.requests: list[Recorded] = []
        self._cond = threading.Condition()
        super().__init__(self.add_routes)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(
            method=request.method,
            path=request.path_qs,
            headers=dict(request.headers),
            body=body,
            at=time.monotonic(),
        )
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()
        answer = self.responder(rec)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if isinstance(answer.body, bytes):
            return web.Response(status=answer.status, body=answer.body)
        return web.json_response(answer.body, status=answer.status)

    def wait_for(
        self, predicate: Callable[[list[Recorded]], bool], timeout: float = 10.0
    ) -> list[Recorded]:
        """Wait (bounded) until ``predicate(requests)`` holds; return a copy of the requests."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"server condition not met in {timeout}s; got {len(self.requests)} "
                        f"request(s): {[r.path for r in self.requests]}"
                    )
                self._cond.wait(min(left, 0.1))
            return list(self.requests)

    def on(self, path_prefix: str) -> list[Recorded]:
        with self._cond:
            return [r for r in self.requests if r.path.startswith(path_prefix)]


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


