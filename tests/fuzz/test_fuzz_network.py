"""Fuzzing the network edges, over real sockets on 127.0.0.1.

- **Remote kill switch**: a real aiohttp server answers each check with a fuzzed status and body.
  ``check_remote_kill_switch`` trips (and calls ``on_active``) exactly on HTTP 200 with a JSON
  object whose ``kill_switch`` is the boolean ``true``; 200 with ``false`` keeps running;
  everything else is a failed check with a reason. It never raises. A live KillSwitchWatcher
  under a supervisor, fed a stream of hostile answers, never crashes (no restart), raises
  ``kill_switch_check_failed`` warnings, and trips only on the real ``true``.
- **Monitoring server** (``/healthz``, ``/metrics``, ``/report``): fuzzed methods, paths, headers,
  bodies and raw bytes. Every answer is a well-formed HTTP response with a sensible status (or
  a closed connection for bytes that are not HTTP at all), and the server keeps answering
  ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _support.localhttp import Answer, LocalServer
from _support.opsupport import FAST_MONITORING, alerts_of, http_get, ops_supervisor
from _support.support import probe_class, pump_until, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.config import load_config
from aistock_actors.net.http import RetryPolicy
from aistock_actors.net.remote_kill import check_remote_kill_switch
from aistock_actors.runtime.supervisor import Supervisor

SERVED: dict[str, Answer] = {"answer": Answer(200, b"{}")}


@pytest.fixture(scope="module")
def remote() -> Iterator[LocalServer]:
    server = LocalServer(lambda _r: SERVED["answer"]).start()
    yield server
    server.stop()


VALUES = [True, False, 1, 0, "true", "false", None, [], {}, [True], {"x": True}, 1.0, "",
          float("nan")]
bodies = st.one_of(
    st.sampled_from(VALUES).map(lambda v: json.dumps({"kill_switch": v}).encode()),
    st.dictionaries(st.sampled_from(["kill_switch", "Kill_Switch", "killswitch", "x", ""]),
                    st.sampled_from(VALUES), max_size=3).map(lambda d: json.dumps(d).encode()),
    st.sampled_from([b"true", b"[true]", b'"kill_switch": true', b'{"kill_switch": true',
                     b'{"kill_switch": false, "kill_switch": true}', b"", b"null",
                     b'{"kill_switch": tru}', b"\xef\xbb\xbf{\"kill_switch\": true}",
                     b'{"kill_switch": true}\x00', b'<html>{"kill_switch": true}</html>']),
    st.binary(max_size=64),
)
statuses = st.one_of(st.just(200), st.sampled_from([201, 204, 301, 400, 401, 403, 404, 408, 429,
                                                    500, 502, 503]), st.integers(200, 599))
POLICY = RetryPolicy(max_attempts=2, max_seconds=0.2, attempt_timeout=3.0, backoff_base=0.001,
                     backoff_max=0.01)


def contract(status: int, body: bytes) -> bool | None:
    """The documented contract, written independently: True trip, False run, None failed."""
    if status != 200:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or type(data.get("kill_switch")) is not bool:
        return None
    return bool(data["kill_switch"])


async def _check(url: str, tripped: list[bool]) -> Any:
    async with aiohttp.ClientSession() as session:
        return await check_remote_kill_switch(session, url, policy=POLICY,
                                              on_active=lambda: tripped.append(True))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=statuses, body=bodies)
def test_remote_answer_trips_only_on_200_with_boolean_true(
    remote: LocalServer, status: int, body: bytes
) -> None:
    if status in (204, 304) or status < 200:
        body = b""  # HTTP forbids a body there; the server would drop it anyway
    SERVED["answer"] = Answer(status, body)
    tripped: list[bool] = []
    result = asyncio.run(_check(remote.url("/kill_switch"), tripped))  # never raises
    expected = contract(status, body)
    assert result.active is expected, (status, body, result)
    assert tripped == ([True] if expected else [])
    if expected is None:
        assert result.error and result.attempts >= 1


def test_a_live_watcher_survives_hostile_answers_and_trips_on_the_real_one(
    tmp_path: Path, remote: LocalServer
) -> None:
    hostile = [Answer(s, b) for s, b in (
        (200, b"true"), (200, b'{"kill_switch": "true"}'), (200, b'{"kill_switch": 1}'),
        (200, b"\xff\xfe"), (500, b'{"kill_switch": true}'), (302, b""), (200, b"[]"),
        (404, b"<html>"), (200, b'{"kill_switch": null}'), (200, b'{"Kill_Switch": true}'),
    )]
    queue = list(hostile)
    lock = threading.Lock()

    def answer(_r: Any) -> Answer:
        with lock:
            return queue.pop(0) if queue else Answer(200, b'{"kill_switch": true}')

    server = LocalServer(answer).start()
    try:
        cfg = write_config(tmp_path, monitoring=FAST_MONITORING, headless={
            "kill_switch_check_url": server.url("/kill_switch"),
            "kill_switch_check_interval_seconds": 0.1,
            "kill_switch_check_timeout_seconds": 0.5})
        sup = ops_supervisor(cfg, probe_class(["ok"] * 50), watchers=(KillSwitchWatcher,))
        sup.start()
        try:
            pump_until(sup, lambda: sup.halt is not None, timeout=30)
            assert not queue  # every hostile answer was served before the trip
            assert sup.state.restarts == {}
            assert sup.halt is not None and sup.halt.reason == "kill_switch_activated"
        finally:
            sup.stop()
    finally:
        server.stop()
    failed = alerts_of(tmp_path / "state", "warning", "kill_switch_check_failed")
    assert failed  # one alert per streak of failed checks, each at the streak's start
    assert all(a["details"]["consecutive_failures"] == 1 for a in failed), failed


# --- the monitoring server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("monitoring")
    sup = Supervisor(load_config(write_config(tmp, monitoring={"listen_port": 0})), [])
    sup.start()
    assert sup.net.bound_port
    yield sup.net.bound_port
    sup.stop()


token = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                       exclude_characters=" "), min_size=1, max_size=12)
paths = st.one_of(
    st.sampled_from(["/healthz", "/metrics", "/report", "/", "/healthz/", "/HEALTHZ",
                     "/healthz?x=1", "/metrics#x", "//healthz", "/%2e%2e/etc/passwd",
                     "/healthz%00", "*", "/" + "a" * 9000]),
    token.map(lambda t: "/" + t),
)
methods = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                     "PATCH", "TRACE", "CONNECT", "get", "G\x00T"]), token)
headers = st.lists(st.tuples(token, st.text(max_size=40).filter(lambda v: "\n" not in v
                                                                and "\r" not in v)),
                   max_size=4)
STATUSES = {200, 400, 404, 405, 413, 414, 431, 501, 503}


def _raw(port: int, request: bytes, *, half_close: bool = False) -> bytes:
    """Send ``request`` as is, then read until the server closes (bounded by the timeout).

    ``half_close`` also ends the sending side (needed for bytes that are not a complete
    request, else the server rightly waits for the rest; a half-closed client may get no
    answer at all: aiohttp takes the EOF for a disconnect)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        if half_close:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def _status(response: bytes) -> int | None:
    if not response:
        return None  # closed without an answer: allowed only for non-HTTP bytes
    head = response.split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1."), response[:200]
    code = int(head.split(b" ")[1])
    return code


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=methods, path=paths, extra=headers, body=st.binary(max_size=64))
def test_fuzzed_requests_get_valid_http_answers_and_the_server_stays_up(
    monitoring: int, method: str, path: str, extra: list[tuple[str, str]], body: bytes
) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             *(f"{k}: {v}" for k, v in extra), f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
    code = _status(_raw(monitoring, request))
    if method in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        assert code in STATUSES, (code, request[:300])  # a plain request always gets an answer
    else:  # aiohttp may close on e.g. a TRACE with a body or a CONNECT to a path
        assert code is None or code in STATUSES, code
    if method == "GET" and path in ("/healthz", "/metrics", "/report") and code is not None \
            and not any(k.lower() in ("content-length", "transfer-encoding", "host",
                                      "connection", "expect") for k, _ in extra):
        assert code == 200, (method, path, extra)
    assert http_get(f"http://127.0.0.1:{monitoring}/healthz")[0] == 200


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_raw_bytes_never_take_the_server_down(monitoring: int, raw: bytes) -> None:
    code = _status(_raw(monitoring, raw, half_close=True))
    assert code is None or code in STATUSES, code
    assert http_get(f"http://127.0.0.1:{monitoring}/metrics")[0] == 200
