"""The console's JSON API on the real monitoring server: auth, 405, audit as ``web``, bad input.

A real supervisor (watchers only) serves the monitoring app on 127.0.0.1; requests go through
``urllib``. Every refused request is checked to change nothing: no kill switch file, no
acknowledgement file, no new audit record.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from _support.curve_reference import LONG_CURVE, archived_account, daily_points
from _support.opsupport import http_get, ops_supervisor
from _support.support import write_config

from aistock_actors.config import load_config
from aistock_actors.core.trading.curve import RECENT_POINTS
from aistock_actors.net.console import MAX_CURVE_POINTS
from aistock_actors.runtime.supervisor import Supervisor
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.alerts import AlertSink

TOKEN_ENV = "AISTOCK_TEST_CONSOLE_TOKEN"
TOKEN = "s3cret-console-token"
CONTROL = ["/api/kill", "/api/unkill", "/api/resume", "/api/approve/m-1@x", "/api/reject/m-1@x",
           "/api/ack/all"]


def post(url: str, token: str | None = None, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body if body is not None else b"", method="POST")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), json.loads(exc.read() or b"{}")


def audit_lines(state: Path) -> list[dict[str, object]]:
    path = state / "audit" / "log.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture()
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    cfg = write_config(tmp_path, monitoring={"listen_port": 0, "control_token_env": TOKEN_ENV})
    sup: Supervisor = ops_supervisor(cfg, watchers=())
    sup.start()
    try:
        yield f"http://127.0.0.1:{sup.net.bound_port}", tmp_path / "state"
    finally:
        sup.stop()


def test_control_needs_the_token_and_post(served: tuple[str, Path]) -> None:
    base, state = served
    before = audit_lines(state)
    for path in CONTROL:
        code, _ = http_get(base + path)
        assert code == 405, path
        code, body = post(base + path)
        assert code == 401 and "Authorization" in str(body["error"]), (path, body)
        code, body = post(base + path, token="wrong")
        assert code == 401 and body["error"] == "wrong control token", path
    assert not (state / "KILL_SWITCH").exists()
    assert not (state / "alerts" / "acknowledged.json").exists()
    assert audit_lines(state) == before


def test_without_a_configured_token_the_console_is_read_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    cfg = write_config(tmp_path, monitoring={"listen_port": 0, "control_token_env": TOKEN_ENV})
    sup = ops_supervisor(cfg, watchers=())
    sup.start()
    try:
        base = f"http://127.0.0.1:{sup.net.bound_port}"
        code, body = post(base + "/api/kill", token="anything")
        assert code == 403 and "read-only" in str(body["error"])
        code, page = http_get(base + "/api/console")
        assert code == 200 and json.loads(page)["control"] is False
    finally:
        sup.stop()
    assert not (tmp_path / "state" / "KILL_SWITCH").exists()


def test_actions_act_and_are_audited_as_web(served: tuple[str, Path]) -> None:
    base, state = served
    code, body = post(base + "/api/kill", TOKEN)
    assert code == 200 and body["ok"] is True and (state / "KILL_SWITCH").exists()
    assert audit_lines(state)[-1]["action"] == "kill_switch_set_by_operator"
    assert audit_lines(state)[-1]["actor"] == "web"
    code, body = post(base + "/api/resume", TOKEN, b'{"note": "checked"}')
    assert code == 409 and "kill switch is active" in str(body["message"])
    code, body = post(base + "/api/unkill", TOKEN)
    assert code == 200 and not (state / "KILL_SWITCH").exists()
    assert audit_lines(state)[-1]["actor"] == "web"
    AlertSink(state / "alerts").raise_alert("critical", "test_alert", "a test", notify=False)
    code, body = post(base + "/api/ack/all", TOKEN)
    assert code == 200 and "acknowledged 1 alert" in str(body["message"]), body
    record = audit_lines(state)[-1]
    assert record["action"] == "alerts_acknowledged" and record["actor"] == "web"
    status = json.loads(http_get(base + "/api/status")[1])
    assert status["alerts"]["critical"] == 0 and status["alerts_acknowledged"]["critical"] == 1


def test_bad_requests_get_4xx_with_a_clear_message_and_change_nothing(
        served: tuple[str, Path]) -> None:
    base, state = served
    AlertSink(state / "alerts").raise_alert("error", "one", "an alert", notify=False)
    before = audit_lines(state)
    cases = [
        ("/api/kill", b"{not json", {}, 400, "malformed request body"),
        ("/api/kill", b"[1, 2]", {}, 400, "malformed request body"),
        ("/api/kill", b'{"reason": "x"}', {}, 400, "malformed request body"),
        ("/api/kill", b'{"note": "' + b"x" * 300 + b'"}', {}, 400, "longer than 200"),
        ("/api/kill", b"x" * 10_000, {}, 413, "too large"),
        ("/api/approve/no-such-entry", b"", {}, 404, "no manifest entry"),
        ("/api/reject/no-such-entry", b"", {}, 404, "no manifest entry"),
        ("/api/approve/risk-99", b"", {}, 404, "no pending risk change"),
        ("/api/ack/20990101T000000.000000Z_nope_1-0", b"", {}, 404, "no alert with id"),
        ("/api/ack/bad%20id%3B", b"", {}, 400, "malformed id"),
    ]
    for path, body, headers, want, text in cases:
        code, answer = post(base + path, TOKEN, body, headers)
        shown = str(answer.get("error") or answer.get("message"))
        assert code == want and text in shown, (path, code, answer)
    assert not (state / "KILL_SWITCH").exists()
    assert not (state / "alerts" / "acknowledged.json").exists()
    assert audit_lines(state) == before


def test_the_console_chart_reaches_back_into_the_archived_points(
        served: tuple[str, Path]) -> None:
    base, state = served
    archived_account(state)
    code, body = http_get(base + "/api/console")
    curve = json.loads(body)["equity_curve"]
    whole = daily_points(0, LONG_CURVE)  # #18: the ledger holds only the newest of them
    assert code == 200 and len(curve) <= MAX_CURVE_POINTS + 1
    assert curve[0] == list(whole[0]) and curve[-1] == list(whole[-1])
    archive = sorted((state / "paper" / "equity").glob("*.jsonl"))
    archive[0].write_bytes(b"garbage\n" + archive[0].read_bytes())  # damaged: the window only
    code, body = http_get(base + "/api/console")
    curve = json.loads(body)["equity_curve"]
    assert code == 200 and curve[0] == list(whole[LONG_CURVE - RECENT_POINTS])


def test_api_status_is_the_status_json_and_the_page_is_self_contained(
        served: tuple[str, Path]) -> None:
    base, state = served
    code, body = http_get(base + "/api/status")
    assert code == 200
    served_status = json.loads(body)
    local = msgspec.to_builtins(operator.status(load_config(state.parent / "config.json")))
    served_status.pop("daemon"), local.pop("daemon")  # the heartbeat age moves on
    assert served_status == local
    code, page = http_get(base + "/")
    assert code == 200 and b'<script src="/console.js">' in page
    for asset in ("/", "/console.js", "/console.css"):
        code, text = http_get(base + asset)
        assert code == 200 and text, asset
        assert not re.search(rb"(src|href)=\"?https?:|url\(https?:|import .*https?:", text), asset
