"""The monitoring server in-process: /metrics agrees with --status, /healthz turns 503."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from _support.opsupport import compare_metrics_with_status, http_get, ops_supervisor
from _support.support import probe_class, pump_until, write_config
from _support.waiting import wait_until

from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.config import load_config
from aistock_actors.services import operator_actions as operator


def test_metrics_match_status_and_healthz_turns_503_on_halt(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, monitoring={"listen_port": 0})
    sup = ops_supervisor(
        cfg, probe_class(["ok", "fail", "ok", "fail"]), watchers=(KillSwitchWatcher,)
    )
    sup.start()
    try:
        base = f"http://127.0.0.1:{sup.net.bound_port}"
        code, body = http_get(base + "/healthz")
        assert code == 200 and json.loads(body)["status"] == "ok"
        outcomes = [s.outcome for s in (sup.run_once() for _ in range(4)) if s is not None]
        assert outcomes == ["succeeded", "failed", "succeeded", "failed"]
        code, _ = http_get(base + "/healthz")
        assert code == 200
        (sup.state_dir / "KILL_SWITCH").touch()
        pump_until(sup, lambda: sup.halt is not None)
        code, body = http_get(base + "/healthz")
        assert code == 503
        health = json.loads(body)
        assert health["status"] == "unhealthy" and health["halted"] is True
        assert health["reasons"] == ["halted: kill_switch_activated"]
        code, metrics = http_get(base + "/metrics")
        assert code == 200
        code, report = http_get(base + "/report")
        assert code == 200 and json.loads(report)["halted"] is True
    finally:
        sup.stop()
    status = msgspec.to_builtins(operator.status(load_config(cfg)))
    assert status["consecutive_failures"] == 1 and status["cycles_total"] == 4
    compare_metrics_with_status(metrics.decode(), status)


def test_healthz_turns_503_when_no_cycle_finished_for_two_intervals(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, monitoring={"listen_port": 0})
    sup = ops_supervisor(cfg, probe_class(["ok"]), watchers=())
    sup.start()
    try:
        url = f"http://127.0.0.1:{sup.net.bound_port}/healthz"
        assert sup.run_once() is not None
        sup.net.daemon_interval_seconds = 0.2
        took = wait_until(lambda: http_get(url)[0] == 503, 5, "503 after two quiet intervals")
        assert took >= 0.2
        body = json.loads(http_get(url)[1])
        assert "no cycle finished" in body["reasons"][0] and body["halted"] is False
    finally:
        sup.stop()


def test_a_port_in_use_is_an_error_alert_not_a_crash(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    first = ops_supervisor(write_config(tmp_path / "a", monitoring={"listen_port": 0}), watchers=())
    first.start()
    try:
        port = first.net.bound_port
        assert port
        second = ops_supervisor(
            write_config(tmp_path / "b", monitoring={"listen_port": port}), watchers=()
        )
        second.start()
        second.stop()
    finally:
        first.stop()
    errors = list((tmp_path / "b" / "state" / "alerts" / "error").glob("*"))
    assert len(errors) == 1 and "monitoring_server_failed" in errors[0].name
    assert second.net.bound_port is None
