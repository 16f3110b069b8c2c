"""Remote kill switch against a real local HTTP server: trip, failed checks, fail-closed, token."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _support.localhttp import Answer, LocalServer, closed_port
from _support.opsupport import FAST_MONITORING, alerts_of, ops_supervisor
from _support.support import audit_actions, probe_class, pump_until, write_config

from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.config import load_config
from aistock_actors.errors import PermanentHTTPError, TransientHTTPError
from aistock_actors.net.remote_kill import FAILED_MESSAGE, parse_kill_switch
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.state import read_halt

INTERVAL = 1.0


def remote_config(tmp_path: Path, url: str, **headless: object) -> Path:
    return write_config(
        tmp_path,
        headless={
            "kill_switch_check_url": url,
            "kill_switch_check_interval_seconds": INTERVAL,
            "kill_switch_check_timeout_seconds": 0.5,
            **headless,
        },
        monitoring=FAST_MONITORING,
    )


def test_remote_true_halts_a_running_supervisor_within_one_interval(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    remote = {"kill_switch": False}
    server = local_server(lambda _r: Answer(200, dict(remote)))
    cfg = remote_config(tmp_path, server.url("/kill_switch"))
    sup = ops_supervisor(cfg, probe_class(["ok"] * 20), watchers=(KillSwitchWatcher,))
    sup.start()
    try:
        pump_until(sup, lambda: len(server.requests) >= 1, timeout=5)  # first check at once
        first = sup.run_once()
        assert first is not None and first.outcome == "succeeded"
        assert not sup.halted

        remote["kill_switch"] = True
        flipped = time.monotonic()
        pump_until(sup, lambda: sup.halt is not None, timeout=INTERVAL + 3)
        assert time.monotonic() - flipped <= INTERVAL + 1.0
        assert sup.halt_flag.is_set() and sup.run_once() is None

        # Switch off remotely, then --unkill: the daemon resumes and announces it.
        remote["kill_switch"] = False
        message, still_halted = operator.unkill(load_config(cfg))
        assert not still_halted, message
        pump_until(sup, lambda: not sup.halted, timeout=5)
        pump_until(sup, lambda: bool(alerts_of(sup.state_dir, "info", "kill_switch_deactivated")))
        again = sup.run_once()
        assert again is not None and again.outcome == "succeeded"
    finally:
        sup.stop()
    state_dir = tmp_path / "state"
    assert all(r.method == "GET" for r in server.requests)
    assert audit_actions(state_dir).count("kill_switch_activated") == 1
    critical = alerts_of(state_dir, "critical", "kill_switch_activated")
    assert len(critical) == 1 and critical[0]["details"]["source"] == "remote"
    assert read_halt(state_dir) is None


@pytest.mark.parametrize(
    ("answer", "retried"),
    [
        (None, True),  # nobody listening: connection refused
        (Answer(500, {"error": "boom"}), True),
        (Answer(200, b"<html>not json</html>"), False),
        (Answer(200, {"status": "ok"}), False),
        (Answer(200, {"kill_switch": "true"}), False),
        (Answer(404, {"kill_switch": True}), False),
    ],
    ids=["refused", "http-500", "not-json", "missing-key", "non-bool", "http-404"],
)
def test_a_failed_check_alerts_and_cycles_continue(
    tmp_path: Path,
    local_server: Callable[..., LocalServer],
    answer: Answer | None,
    retried: bool,
) -> None:
    if answer is None:
        url = f"http://127.0.0.1:{closed_port()}/kill_switch"
    else:
        url = local_server(lambda _r: answer).url("/kill_switch")
    sup = ops_supervisor(
        remote_config(tmp_path, url), probe_class(["ok"] * 20), watchers=(KillSwitchWatcher,)
    )
    state_dir = tmp_path / "state"
    sup.start()
    try:
        summary = sup.run_once()
        pump_until(
            sup, lambda: bool(alerts_of(state_dir, "warning", "kill_switch_check_failed")), 5
        )
        later = sup.run_once()
    finally:
        sup.stop()
    assert summary is not None and summary.outcome == "succeeded"
    assert later is not None and later.outcome == "succeeded"
    assert not sup.halted and read_halt(state_dir) is None
    alert = alerts_of(state_dir, "warning", "kill_switch_check_failed")[0]
    assert alert["message"].startswith(FAILED_MESSAGE + ": ")
    assert (alert["details"]["attempts"] > 1) is retried
    saved = json.loads((state_dir / "kill_switch_remote.json").read_text())
    assert saved["consecutive_failures"] >= 1 and saved["last_error"]


def test_fail_closed_trips_after_n_failed_checks(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    server = local_server(lambda _r: Answer(503, {"error": "down"}))
    cfg = write_config(
        tmp_path,
        headless={
            "kill_switch_check_url": server.url("/ks"),
            "kill_switch_check_interval_seconds": 0.5,
            "kill_switch_check_timeout_seconds": 0.2,
            "kill_switch_fail_closed_after": 2,
        },
        monitoring=FAST_MONITORING,
    )
    sup = ops_supervisor(cfg, probe_class(["ok"] * 5), watchers=(KillSwitchWatcher,))
    state_dir = tmp_path / "state"
    sup.start()
    try:
        pump_until(sup, lambda: sup.halt is not None, timeout=6)
    finally:
        sup.stop()
    warnings = alerts_of(state_dir, "warning", "kill_switch_check_failed")
    assert [w["details"]["consecutive_failures"] for w in warnings] == [1]  # once per streak
    halt = read_halt(state_dir)
    assert halt is not None and halt.kind == "kill_switch"
    assert halt.details["source"] == "remote" and "fail-closed" in halt.message


def test_fail_open_by_default_never_trips(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    server = local_server(lambda _r: Answer(503, {}))
    cfg = write_config(
        tmp_path,
        headless={
            "kill_switch_check_url": server.url("/ks"),
            "kill_switch_check_interval_seconds": 0.3,
            "kill_switch_check_timeout_seconds": 0.1,
        },
        monitoring=FAST_MONITORING,
    )
    sup = ops_supervisor(cfg, probe_class(["ok"] * 5), watchers=(KillSwitchWatcher,))
    sup.start()
    try:
        pump_until(sup, lambda: remote_failures(sup.state_dir) >= 3)
        assert not sup.halted
    finally:
        sup.stop()
    # three failed checks in a row, one alert: when the streak started
    assert len(alerts_of(sup.state_dir, "warning", "kill_switch_check_failed")) == 1


def remote_failures(state_dir: Path) -> int:
    try:
        saved = json.loads((state_dir / "kill_switch_remote.json").read_text())
    except (OSError, ValueError):
        return 0
    return int(saved["consecutive_failures"])


def test_bearer_token_comes_from_the_named_environment_variable(
    tmp_path: Path, local_server: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISTOCK_TEST_KS_TOKEN", "tok-s3cret-from-env")
    server = local_server(lambda _r: Answer(200, {"kill_switch": False}))
    cfg = remote_config(
        tmp_path, server.url("/ks"), kill_switch_token_env="AISTOCK_TEST_KS_TOKEN"
    )
    sup = ops_supervisor(cfg, watchers=(KillSwitchWatcher,))
    sup.start()
    try:
        pump_until(sup, lambda: len(server.requests) >= 1, timeout=5)
    finally:
        sup.stop()
    assert server.requests[0].headers["Authorization"] == "Bearer tok-s3cret-from-env"


def test_a_named_but_unset_token_variable_is_a_failed_check_without_a_request(
    tmp_path: Path, local_server: Callable[..., LocalServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AISTOCK_TEST_UNSET_TOKEN", raising=False)
    server = local_server(lambda _r: Answer(200, {"kill_switch": True}))
    cfg = remote_config(
        tmp_path, server.url("/ks"), kill_switch_token_env="AISTOCK_TEST_UNSET_TOKEN"
    )
    sup = ops_supervisor(cfg, watchers=(KillSwitchWatcher,))
    sup.start()
    try:
        pump_until(
            sup, lambda: bool(alerts_of(sup.state_dir, "warning", "kill_switch_check_failed"))
        )
    finally:
        sup.stop()
    alert = alerts_of(tmp_path / "state", "warning", "kill_switch_check_failed")[0]
    assert "AISTOCK_TEST_UNSET_TOKEN is not set" in alert["message"]
    assert server.requests == [] and not sup.halted


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [(200, b'{"kill_switch": true}', True), (200, b'{"kill_switch": false, "x": 1}', False)],
)
def test_contract_accepts_only_a_boolean_on_200(status: int, body: bytes, expected: bool) -> None:
    assert parse_kill_switch(status, body) is expected


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b"", TransientHTTPError),
        (429, b"", TransientHTTPError),
        (403, b'{"kill_switch": true}', PermanentHTTPError),
        (200, b"yes", PermanentHTTPError),
        (200, b"[true]", PermanentHTTPError),
        (200, b'{"kill_switch": 1}', PermanentHTTPError),
        (200, b'{"kill_switch": null}', PermanentHTTPError),
        (200, b"\xff\xfe", PermanentHTTPError),
    ],
)
def test_contract_everything_else_is_a_failed_check(
    status: int, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse_kill_switch(status, body)


def test_a_failing_check_alerts_once_per_streak_and_once_on_recovery(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    """fail x3, ok, fail x2: two ``kill_switch_check_failed`` (each at a streak's start), one
    ``kill_switch_check_recovered`` -- not one warning (and webhook) per failed check."""
    script = [503, 503, 503, 200, 503, 503]
    served: list[int] = []

    def answer(_request: object) -> Answer:
        status = script[len(served)] if len(served) < len(script) else 503
        served.append(status)
        return Answer(status, {"kill_switch": False} if status == 200 else {})

    server = local_server(answer)
    cfg = write_config(tmp_path, headless={
        "kill_switch_check_url": server.url("/ks"),
        "kill_switch_check_interval_seconds": 0.2,
        "kill_switch_check_timeout_seconds": 0.2,
    }, monitoring={**FAST_MONITORING, "retry_max_attempts": 1})
    sup = ops_supervisor(cfg, probe_class(["ok"] * 5), watchers=(KillSwitchWatcher,))
    sup.start()
    try:
        pump_until(sup, lambda: len(served) >= len(script) and remote_failures(sup.state_dir)
                   >= 2, timeout=15)
    finally:
        sup.stop()
    failed = alerts_of(tmp_path / "state", "warning", "kill_switch_check_failed")
    assert [a["details"]["consecutive_failures"] for a in failed] == [1, 1], failed
    assert len(alerts_of(tmp_path / "state", "info", "kill_switch_check_recovered")) == 1
