"""The apprise notification lane against a real local HTTP target (apprise's ``json://``).

A real supervisor with ``notification_webhooks.apprise`` (one literal URL, one from an
environment variable) raises alerts; the local server must receive each WARNING+ alert once per
URL with its title and message, INFO nothing, and the URLs (secrets) masked wherever they appear
in a message. A variable that is not set and a URL apprise does not understand are one warning
line each, not a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from _support.localhttp import LocalServer
from _support.opsupport import alerts_of, ops_supervisor
from _support.support import write_config
from _support.waiting import wait_until

from aistock_actors.net.apprise_target import apprise_payload, apprise_urls
from aistock_actors.store.alerts import Alert

ENV = "AISTOCK_TEST_APPRISE_URL"


def test_alerts_reach_every_apprise_url_with_secrets_masked(
        tmp_path: Path, local_server: Callable[..., LocalServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = local_server()
    literal = server.url("/literal/s3cr3t-token-1").replace("http://", "json://")
    from_env = server.url("/from-env/s3cr3t-token-2").replace("http://", "json://")
    monkeypatch.setenv(ENV, from_env)
    cfg = write_config(tmp_path, supervision={"notification_webhooks": {
        "apprise": [literal], "apprise_env": [ENV]}},
        monitoring={"retry_max_attempts": 2, "http_timeout_seconds": 5})
    sup = ops_supervisor(cfg, watchers=())
    sup.start()
    try:
        sup.alerts.raise_alert("critical", "disk_gone", f"cannot reach {literal} nor {from_env}",
                               actor="test")
        sup.alerts.raise_alert("info", "just_info", "nobody is told", actor="test")
        wait_until(lambda: len(server.requests) >= 2, 30, "both apprise deliveries")
    finally:
        sup.stop()
    paths = sorted(r.path for r in server.requests)
    assert paths == ["/from-env/s3cr3t-token-2", "/literal/s3cr3t-token-1"], paths
    for request in server.requests:
        body = request.json
        assert body["title"] == "[aistock] CRITICAL disk_gone" and body["type"] == "failure"
        assert "s3cr3t-token" not in json.dumps(body) and "***" in body["message"], body
    assert "s3cr3t-token" not in json.dumps(alerts_of(tmp_path / "state", "critical", "disk_gone"))


def test_unusable_apprise_entries_are_one_warning_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    urls, problems = apprise_urls(["nosuchscheme://x/y"], [ENV], {})
    assert urls == []
    assert problems == [f"apprise: environment variable {ENV} is not set",
                        "apprise: URL #1 (scheme 'nosuchscheme') is not understood by apprise; "
                        "skipped"]
    cfg = write_config(tmp_path, supervision={"notification_webhooks": {
        "apprise": ["nosuchscheme://x/y"], "apprise_env": [ENV]}})
    sup = ops_supervisor(cfg, watchers=())
    sup.start()
    sup.stop()
    warnings = alerts_of(tmp_path / "state", "warning", "webhook_misconfigured")
    assert len(warnings) == 2 and "nosuchscheme://x/y" not in json.dumps(warnings), warnings


def test_payload_maps_severity_to_the_apprise_type() -> None:
    alert = Alert(ts="2026-01-13T12:00:00Z", severity="warning", code="c", message="m",
                  actor="a")
    assert apprise_payload(alert) == {"title": "[aistock] WARNING c",
                                      "body": "m\n(a, 2026-01-13T12:00:00Z)",
                                      "notify_type": "warning"}
