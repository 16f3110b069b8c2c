"""Health reports: the pure report and issues, and the HealthReporter against a real server."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from _support.localhttp import Answer, LocalServer, closed_port
from _support.opsupport import FAST_MONITORING, alerts_of, ops_supervisor
from _support.support import probe_class, pump_until, write_config
from _support.waiting import wait_until

from aistock_actors.actors.health_reporter import HealthReporter
from aistock_actors.core.supervision.health import (
    HEALTH_REPORT_FIELDS,
    build_health_report,
    health_issues,
    healthz,
)
from aistock_actors.runtime.supervisor import Supervisor
from aistock_actors.runtime.telemetry import TelemetrySnapshot

NOW = 1_760_000_000.0
DAY = 86400.0


def snap(**fields: object) -> TelemetrySnapshot:
    base: dict[str, object] = {"started_at": NOW - 60, "last_bar_added_at": NOW - 60}
    base.update(fields)
    return TelemetrySnapshot(**base)  # type: ignore[arg-type]


# --- pure -----------------------------------------------------------------------------------


def test_a_healthy_snapshot_gives_the_manuals_report() -> None:
    report = build_health_report(
        snap(bars_added_total=1440, promotions=1, active_model="m-1"), NOW, DAY
    )
    assert set(HEALTH_REPORT_FIELDS) <= set(report)
    assert report["timestamp"] == dt.datetime.fromtimestamp(NOW, dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert report["healthy"] is True and report["issues"] == []
    assert (report["bars_added"], report["promotions"], report["risk_adjustments"]) == (1440, 1, 0)
    assert report["active_model"] == "m-1" and report["kill_switch"] is False


@pytest.mark.parametrize(
    ("fields", "kwargs", "issue"),
    [
        ({"halted": True, "halt_reason": "max_failures_reached"}, {}, "halted: max_failures"),
        ({"kill_switch": True}, {}, "kill_switch: active"),
        ({"last_bar_added_at": NOW - 2 * DAY}, {}, "data_stale: no new bar for 172800s"),
        ({"last_bar_added_at": None, "started_at": NOW - 2 * DAY}, {}, "data_stale"),
        ({"drawdown": 0.3}, {"max_drawdown": 0.25}, "risk_breach: paper drawdown 0.3000"),
        ({"risk_limits": {"max_position_fraction": 0.4}}, {}, "risk_breach: max_position_fraction"),
        ({"open_critical_alerts": 2}, {}, "critical_alerts: 2 open"),
    ],
)
def test_issues_name_what_is_wrong_now(
    fields: dict[str, object], kwargs: dict[str, float], issue: str
) -> None:
    issues = health_issues(snap(**fields), NOW, DAY, **kwargs)
    assert any(i.startswith(issue) for i in issues), issues
    assert build_health_report(snap(**fields), NOW, DAY, **kwargs)["healthy"] is False


def test_no_risk_breach_inside_the_limits() -> None:
    fields = {"drawdown": 0.1, "risk_limits": {"max_position_fraction": 0.3}}
    assert health_issues(snap(**fields), NOW, DAY, max_drawdown=0.25) == []


def test_healthz_is_503_when_halted_or_after_two_intervals_without_a_cycle() -> None:
    assert healthz(snap(last_cycle_finished_at=NOW - 100), NOW, 60)[0] is True
    ok, body = healthz(snap(last_cycle_finished_at=NOW - 121), NOW, 60)
    assert not ok and "no cycle finished" in body["reasons"][0]
    assert healthz(snap(started_at=NOW - 100), NOW, 60)[0] is True  # fresh daemon: grace
    ok, body = healthz(snap(halted=True, halt_reason="kill_switch_activated"), NOW, 60)
    assert not ok and body["status"] == "unhealthy" and body["halted"] is True
    assert healthz(snap(last_cycle_finished_at=NOW - 10 * DAY), NOW, None)[0] is True


# --- the actor against a real monitoring server -----------------------------------------------


def report_failures(state_dir: Path) -> list[dict[str, object]]:
    return alerts_of(state_dir, "warning", "health_report_failed")


def failed_reports(sup: Supervisor) -> float:
    """Failed health reports so far, from ``aistock_health_reports_total{result="failed"}``."""
    value = sup.telemetry.registry.get_sample_value("aistock_health_reports_total",
                                                    {"result": "failed"})
    return value or 0.0


def reporter_config(tmp_path: Path, url: str, interval: float) -> Path:
    return write_config(
        tmp_path,
        headless={"external_health_report_url": url, "health_report_interval_seconds": interval},
        monitoring=FAST_MONITORING,
    )


def test_monitoring_server_receives_reports_with_every_documented_field(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    server = local_server(lambda _r: Answer(202, {"accepted": True}))
    cfg = reporter_config(tmp_path, server.url("/health"), interval=0.3)
    sup = ops_supervisor(cfg, probe_class(["ok"] * 10), watchers=(HealthReporter,))
    sup.start()
    try:
        for _ in range(2):
            summary = sup.run_once()
            assert summary is not None and summary.outcome == "succeeded"
        pump_until(sup, lambda: any(r.json["bars_added"] == 2 for r in server.requests))
        (sup.state_dir / "KILL_SWITCH").touch()
        pump_until(sup, lambda: any(r.json["halted"] for r in server.requests), timeout=5)
    finally:
        sup.stop()
    reports = [r for r in server.requests if r.path == "/health"]
    assert all(r.method == "POST" for r in reports)
    assert reports[0].headers["Content-Type"].startswith("application/json")
    healthy = next(r.json for r in reports if r.json["bars_added"] == 2)
    assert set(HEALTH_REPORT_FIELDS) <= set(healthy)
    assert healthy["healthy"] is True and healthy["issues"] == []
    assert healthy["halted"] is False and healthy["kill_switch"] is False
    assert healthy["consecutive_failures"] == 0 and healthy["trades_executed"] == 0
    assert healthy["timestamp"].endswith("Z")
    halted = next(r.json for r in reports if r.json["halted"])
    assert halted["healthy"] is False and halted["kill_switch"] is True
    # #17: the audit chain head rides along, so a monitor can compare it between reports.
    assert len(halted["audit_head"]) == 64 and halted["audit_head"] != healthy["audit_head"]
    assert "halted: kill_switch_activated" in halted["issues"]
    assert not alerts_of(tmp_path / "state", "warning", "health_report_failed")
    # from disk: the active model (none here: no judge ran) and open vs acknowledged alerts
    assert halted["active_model"] is None and healthy["active_model"] is None
    assert halted["alerts_open"]["critical"] >= 1 and halted["alerts_acknowledged"] == {
        "info": 0, "warning": 0, "error": 0, "critical": 0}


def test_run_once_reports_after_its_cycle_not_before(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    """As ``--run-once`` does: one cycle, then stop. Exactly one report, and it covers the cycle
    (no report of zero counters at start): sent after the cycle by a tick, or by the reporter as
    it stops, never both."""
    server = local_server(lambda _r: Answer(202, {}))
    sup = ops_supervisor(reporter_config(tmp_path, server.url("/health"), interval=300),
                         probe_class(["ok"]), watchers=(HealthReporter,))
    sup.start()
    try:
        summary = sup.run_once()
        assert summary is not None and summary.outcome == "succeeded"
    finally:
        sup.stop()
    (report,) = [r.json for r in server.requests]
    assert report["last_cycle_outcome"] == "succeeded" and report["bars_added"] == 1, report


def test_report_and_metrics_carry_the_active_model_and_alert_counts(tmp_path: Path) -> None:
    from _support.opsupport import http_get, metric_samples

    from aistock_actors.config import load_config
    from aistock_actors.services import operator_actions as operator
    from aistock_actors.store.models import ModelRecord

    cfg = write_config(tmp_path, monitoring={"listen_port": 0})
    pointer = tmp_path / "models" / "active" / "model.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_bytes(msgspec.json.encode(ModelRecord(
        model_id="m-7", sha256="0" * 64, created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        metrics={}, threshold=0.5, feature_names=["f"], horizon=2)))
    sup = ops_supervisor(cfg, watchers=())
    sup.start()
    try:
        sup.alerts.raise_alert("critical", "one", "first", notify=False)
        sup.alerts.raise_alert("critical", "two", "second", notify=False)
        operator.ack(load_config(cfg), "all")
        sup.alerts.raise_alert("error", "three", "third", notify=False)
        base = f"http://127.0.0.1:{sup.net.bound_port}"
        report = json.loads(http_get(base + "/report")[1])
        samples = metric_samples(http_get(base + "/metrics")[1].decode())
    finally:
        sup.stop()
    assert report["active_model"] == "m-7"
    assert report["alerts_open"]["error"] == 1 and report["alerts_open"]["critical"] == 0
    assert report["alerts_acknowledged"]["critical"] == 2
    assert samples[("aistock_alerts_open", (("severity", "error"),))] == 1
    assert samples[("aistock_alerts_acknowledged", (("severity", "critical"),))] == 2


@pytest.mark.parametrize("down", ["refused", "hangs"])
def test_a_down_endpoint_gives_warnings_and_cycles_keep_their_pace(
    tmp_path: Path, local_server: Callable[..., LocalServer], down: str
) -> None:
    if down == "refused":
        url = f"http://127.0.0.1:{closed_port()}/health"
    else:
        url = local_server(lambda _r: Answer(200, {}, delay=1.5)).url("/health")
    cfg = reporter_config(tmp_path, url, interval=0.4)
    sup = ops_supervisor(cfg, probe_class(["ok"] * 100), watchers=(HealthReporter,))
    interval, target = 0.1, 12
    state_dir = tmp_path / "state"
    sup.start()
    runner = threading.Thread(target=sup.run_daemon, args=(interval,), daemon=True)
    try:
        runner.start()
        took = wait_until(lambda: sup.state.cycles_total >= target, 10, f"{target} cycles")
        wait_until(lambda: failed_reports(sup) >= 2, 10, "two failed reports")
    finally:
        sup.stop_event.set()
        runner.join(10)
        sup.stop()
    assert not runner.is_alive()
    # Cycles start every `interval`: a dead endpoint must not slow them down.
    assert took <= target * interval * 1.5 + 0.5, took
    assert sup.state.cycles_failed == 0
    warnings = alerts_of(state_dir, "warning", "health_report_failed")
    assert len(warnings) == 1  # once, when the streak of failures started
    assert warnings[0]["message"].startswith("health_report_failed: ")
    assert warnings[0]["details"]["consecutive_failures"] == 1


def test_recovery_after_failures_is_announced(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    failing = {"on": True}
    server = local_server(lambda _r: Answer(500 if failing["on"] else 200, {}))
    sup = ops_supervisor(
        reporter_config(tmp_path, server.url("/h"), interval=0.3), watchers=(HealthReporter,)
    )
    state_dir = tmp_path / "state"
    sup.start()
    try:
        pump_until(sup, lambda: bool(alerts_of(state_dir, "warning", "health_report_failed")))
        failing["on"] = False
        started = time.monotonic()
        pump_until(sup, lambda: bool(alerts_of(state_dir, "info", "health_report_recovered")))
        assert time.monotonic() - started < 3
    finally:
        sup.stop()
    failed = alerts_of(state_dir, "warning", "health_report_failed")[0]
    assert failed["details"]["attempts"] > 1  # a 500 is retried before it counts as failed
