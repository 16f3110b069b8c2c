"""Alert webhooks against a real local server: Slack, PagerDuty Events v2, generic; retries."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _support.localhttp import Answer, LocalServer
from _support.opsupport import FAST_MONITORING, ops_supervisor
from _support.support import probe_class, pump_until, write_config
from _support.waiting import wait_until

from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.config import load_config, parse_config
from aistock_actors.net.http import RetryPolicy
from aistock_actors.net.payloads import (
    PAGERDUTY_EVENTS_URL,
    IncidentTracker,
    WebhookTarget,
    dedup_key,
    webhook_targets,
)
from aistock_actors.net.webhooks import WebhookDispatcher
from aistock_actors.runtime.redaction import Redactor
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.alerts import Alert

ROUTING_KEY = "R0UTINGfakeKEY000000000000000001"
PD_EVENT_KEYS = {"routing_key", "event_action", "dedup_key", "payload"}
PD_PAYLOAD_KEYS = {
    "summary",
    "source",
    "severity",
    "timestamp",
    "component",
    "group",
    "class",
    "custom_details",
}


def alert(code: str, severity: str = "warning") -> Alert:
    return Alert(ts="2026-01-13T12:00:00.000000Z", severity=severity, code=code,  # type: ignore[arg-type]
                 message=f"{code} happened", actor="test")


def test_slack_pagerduty_and_generic_get_their_documented_payloads(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    server = local_server(lambda r: Answer(202 if r.path.startswith("/v2") else 200, {"ok": 1}))
    hooks = {
        "slack": server.url("/services/T0FAKE/B0FAKE/slackFakeToken123"),
        "pagerduty": server.url("/v2/enqueue"),
        "pagerduty_routing_key": ROUTING_KEY,
        "generic": server.url("/generic"),
    }
    cfg = write_config(
        tmp_path, supervision={"notification_webhooks": hooks}, monitoring=FAST_MONITORING
    )
    sup = ops_supervisor(cfg, probe_class(["ok"]), watchers=(KillSwitchWatcher,))
    state_dir = tmp_path / "state"
    sup.start()
    try:
        sup.alerts.raise_alert("info", "just_info", "never sent")
        note = sup.alerts.raise_alert(
            "warning", "csv_note", "AAA.csv: <odd> & kept", details={"file": "AAA.csv"}
        )
        (state_dir / "KILL_SWITCH").touch()
        pump_until(sup, lambda: sup.halt is not None)
        server.wait_for(lambda rs: sum(r.path.startswith("/v2") for r in rs) >= 2)
        assert operator.unkill(load_config(cfg))[1] is False
        pump_until(sup, lambda: any(r.json["event_action"] == "resolve" for r in server.on("/v2")))
    finally:
        sup.stop()

    slack = [r.json for r in server.on("/services/")]
    assert [set(m) for m in slack] == [{"text", "blocks"}] * 2
    assert [b["type"] for b in slack[0]["blocks"]] == ["header", "section", "context"]
    assert slack[0]["blocks"][0]["text"]["type"] == "plain_text"
    assert slack[0]["blocks"][1]["text"] == {
        "type": "mrkdwn",
        "text": ":warning: AAA.csv: &lt;odd&gt; &amp; kept",
    }
    assert "csv_note" in slack[0]["text"] and "kill_switch_activated" in slack[1]["text"]

    events = [r.json for r in server.on("/v2/enqueue")]
    triggers = [e for e in events if e["event_action"] == "trigger"]
    assert [set(e) for e in triggers] == [PD_EVENT_KEYS] * 2
    assert [set(e["payload"]) for e in triggers] == [PD_PAYLOAD_KEYS] * 2
    assert [e["payload"]["severity"] for e in triggers] == ["warning", "critical"]
    assert [e["dedup_key"] for e in triggers] == [
        dedup_key("csv_note"),
        dedup_key("kill_switch_activated"),
    ]
    assert all(e["routing_key"] == ROUTING_KEY for e in events)
    resolves = [e for e in events if e["event_action"] == "resolve"]
    assert resolves == [
        {
            "routing_key": ROUTING_KEY,
            "event_action": "resolve",
            "dedup_key": dedup_key("kill_switch_activated"),
        }
    ]
    generic = [r.json for r in server.on("/generic")]
    assert generic[0] == json.loads(note.read_text())
    assert [g["code"] for g in generic] == ["csv_note", "kill_switch_activated"]
    assert all(r.headers["Content-Type"].startswith("application/json") for r in server.requests)


def test_a_failing_webhook_is_retried_then_abandoned_and_never_delays_a_cycle(
    tmp_path: Path, local_server: Callable[..., LocalServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = local_server(lambda _r: Answer(500, {"error": "down"}))
    cfg = write_config(
        tmp_path,
        supervision={"notification_webhooks": {"generic": server.url("/hook")}},
        monitoring=FAST_MONITORING,
    )
    sup = ops_supervisor(cfg, probe_class(["fail", "ok"]), watchers=())
    sup.start()
    try:
        started = time.monotonic()
        failed = sup.run_once()  # its step failure raises an error alert -> the dead webhook
        failed_took = time.monotonic() - started
        started = time.monotonic()
        ok = sup.run_once()
        ok_took = time.monotonic() - started
        wait_until(lambda: sup.net.webhooks.stats()["generic"].abandoned >= 1, 5, "abandon")
        requests = server.wait_for(lambda rs: len(rs) >= 3)
    finally:
        sup.stop()
    assert failed is not None and failed.outcome == "failed"
    assert ok is not None and ok.outcome == "succeeded"
    assert failed_took < 0.5 and ok_took < 0.5, (failed_took, ok_took)
    first_alert = [r for r in requests if r.json["code"] == "data_ingestion_failed"]
    assert len(first_alert) == FAST_MONITORING["retry_max_attempts"]  # retried, then abandoned
    spread = first_alert[-1].at - first_alert[0].at
    assert spread <= FAST_MONITORING["retry_max_seconds"] + 0.2
    abandoned = "webhook generic: abandoned alert data_ingestion_failed after 3 attempt(s)"
    assert abandoned in caplog.text


def test_a_full_queue_drops_the_oldest_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    policy = RetryPolicy(max_attempts=1, max_seconds=0.1, attempt_timeout=0.1,
                         backoff_base=0.01, backoff_max=0.01)
    target = WebhookTarget(kind="generic", url="http://127.0.0.1:9/never-started")
    dispatcher = WebhookDispatcher([target], policy, queue_size=2, redactor=Redactor())
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    for i in range(5):
        dispatcher.offer(alert(f"a{i}"))
    assert time.monotonic() - started < 0.1  # enqueueing never waits on the network
    assert dispatcher.stats()["generic"].dropped == 3 and dispatcher.pending() == 2
    drops = [r.getMessage() for r in caplog.records if "dropped the oldest" in r.getMessage()]
    assert [d.split("alert ")[1] for d in drops] == [
        "a0 (1 dropped so far)",
        "a1 (2 dropped so far)",
        "a2 (3 dropped so far)",
    ]


def test_info_alerts_only_resolve_and_recoveries_resolve_their_failure() -> None:
    tracker = IncidentTracker()
    assert tracker.observe(alert("kill_switch_check_failed")) == []
    assert tracker.observe(alert("max_failures_reached", "critical")) == []
    assert tracker.open_critical == 1
    assert tracker.observe(alert("kill_switch_check_recovered", "info")) == [
        "kill_switch_check_failed"
    ]
    assert tracker.observe(alert("operator_resumed", "info")) == ["max_failures_reached"]
    assert tracker.open_codes() == {} and tracker.open_critical == 0


def test_targets_come_from_config_and_named_environment_variables() -> None:
    cfg, _ = parse_config(json.dumps({"supervision": {"notification_webhooks": {
        "slack": "https://hooks.example/literal",
        "slack_env": "X_SLACK",
        "generic_env": "X_GENERIC_UNSET",
        "pagerduty_routing_key_env": "X_PD_KEY",
    }}}))
    targets, problems = webhook_targets(cfg, {"X_SLACK": "https://hooks.example/from-env",
                                              "X_PD_KEY": "pdkey-123456"})
    assert [(t.kind, t.url, t.routing_key) for t in targets] == [
        ("slack", "https://hooks.example/from-env", None),
        ("pagerduty", PAGERDUTY_EVENTS_URL, "pdkey-123456"),
    ]
    assert problems == ["generic: environment variable X_GENERIC_UNSET is not set"]
    cfg, _ = parse_config(b'{"supervision": {"notification_webhooks": {"pagerduty": "https://pd"}}}')
    targets, problems = webhook_targets(cfg, {})
    assert targets == [] and "no routing key" in problems[0]


def test_a_misconfigured_webhook_is_a_warning_at_start(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, supervision={"notification_webhooks": {"slack_env": "AISTOCK_TEST_NO_SUCH_VAR"}}
    )
    sup = ops_supervisor(cfg, watchers=())
    sup.start()
    sup.stop()
    files = list((tmp_path / "state" / "alerts" / "warning").glob("*webhook_misconfigured*"))
    assert len(files) == 1
    assert "AISTOCK_TEST_NO_SUCH_VAR is not set" in files[0].read_text()
