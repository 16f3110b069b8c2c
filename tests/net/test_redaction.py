"""Secrets never reach the state directory or the logs: webhook URLs, routing key, tokens."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from _support.localhttp import Answer, LocalServer
from _support.opsupport import FAST_MONITORING, ops_supervisor
from _support.support import probe_class, pump_until, write_config

from aistock_actors.config import parse_config
from aistock_actors.runtime.redaction import MASK, Redactor, config_secrets

SLACK_TOKEN_PATH = "/services/T0FAKE/B0FAKE/xoxbFAKEslackTOKEN9f8e7d"
GENERIC_PATH = "/generic/secret-path-FAKE-abcdef123"
PD_KEY = "pdkeyFAKE0123456789abcdef"
BEARER = "bearerFAKEtoken5555"
QUERY_TOKEN = "queryFAKEsecret777"


def test_no_secret_in_any_state_file_nor_in_the_logs(
    tmp_path: Path,
    local_server: Callable[..., LocalServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = local_server(lambda r: Answer(500 if r.path.startswith("/services") else 200, {}))
    slack_url = server.url(SLACK_TOKEN_PATH)
    generic_url = server.url(GENERIC_PATH)
    monkeypatch.setenv("AISTOCK_TEST_GENERIC_URL", generic_url)
    monkeypatch.setenv("AISTOCK_TEST_PD_KEY", PD_KEY)
    monkeypatch.setenv("AISTOCK_TEST_BEARER", BEARER)
    cfg = write_config(
        tmp_path,
        headless={
            "kill_switch_check_url": server.url(f"/ks?token={QUERY_TOKEN}"),
            "kill_switch_check_interval_seconds": 0.3,
            "kill_switch_token_env": "AISTOCK_TEST_BEARER",
            "external_health_report_url": server.url("/health"),
            "health_report_interval_seconds": 0.3,
        },
        supervision={
            "notification_webhooks": {
                "slack": slack_url,
                "generic_env": "AISTOCK_TEST_GENERIC_URL",
                "pagerduty": server.url("/v2/enqueue"),
                "pagerduty_routing_key_env": "AISTOCK_TEST_PD_KEY",
            }
        },
        monitoring=FAST_MONITORING,
    )
    secrets = [slack_url, SLACK_TOKEN_PATH, generic_url, GENERIC_PATH, PD_KEY, BEARER, QUERY_TOKEN]
    caplog.set_level(logging.DEBUG)
    sup = ops_supervisor(cfg, probe_class(["ok", "fail", "ok"]))
    sup.start()
    try:
        for _ in range(3):
            sup.run_once()
        # A careless actor puts every secret into an alert, an audit record and log lines.
        everything = " ".join(secrets)
        sup.alerts.raise_alert("error", "careless", f"failed: {everything}",
                               details={"url": slack_url, "nested": [{"key": PD_KEY}]})
        sup.audit.append("careless_audit", "test", {"token": BEARER, "urls": [generic_url]})
        logging.getLogger("aistock_actors.test").error("posting to %s failed", slack_url)
        try:
            raise RuntimeError(f"cannot reach {generic_url} with {BEARER}")
        except RuntimeError:
            logging.getLogger("aistock_actors.test").exception("boom")
        pump_until(sup, lambda: len(server.on("/services")) >= 3)  # the Slack webhook got some
        pump_until(sup, lambda: len(server.on("/health")) >= 1)
        pump_until(sup, lambda: any(r.path.startswith("/ks") for r in server.requests))
    finally:
        sup.stop()
    ks = next(r for r in server.requests if r.path.startswith("/ks"))
    assert ks.headers["Authorization"] == f"Bearer {BEARER}"  # the secret was really used
    assert any(r.json.get("routing_key") == PD_KEY for r in server.on("/v2"))

    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} leaked into {path}"
    assert caplog.text and "posting to" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text, f"{secret} leaked into the logs"
    careless = next((tmp_path / "state" / "alerts" / "error").glob("*careless*"))
    alert = json.loads(careless.read_text())
    assert alert["details"] == {"url": MASK, "nested": [{"key": MASK}]}
    assert "cannot reach *** with ***" in caplog.text


def test_url_secrets_are_masked_whole_and_by_path() -> None:
    redactor = Redactor(["https://hooks.example.com/services/T1/B2/abcdefgh"])
    assert redactor.text("url='https://hooks.example.com/services/T1/B2/abcdefgh'") == "url='***'"
    # A library re-rendering the URL (default port added, other scheme) still loses the path.
    assert "abcdefgh" not in redactor.text("POST https://hooks.example.com:443/services/T1/B2/abcdefgh")
    assert redactor.text("nothing secret /v2 here") == "nothing secret /v2 here"
    assert redactor.value({"a": ["x /services/T1/B2/abcdefgh"], "n": 3}) == {"a": ["x ***"], "n": 3}


def test_config_secrets_include_env_values_and_url_credentials() -> None:
    cfg, _ = parse_config(json.dumps({
        "headless": {"kill_switch_check_url": "https://user:hunter2pw@ks.example/k?sig=abcdef123",
                     "kill_switch_token_env": "T_ENV"},
        "supervision": {"notification_webhooks": {"pagerduty_routing_key": "literal-key-123"}},
    }))
    secrets = config_secrets(cfg, {"T_ENV": "env-token-xyz"})
    assert {"literal-key-123", "env-token-xyz", "hunter2pw", "sig=abcdef123"} <= set(secrets)
    assert "https://user:hunter2pw@ks.example/k?sig=abcdef123" not in secrets  # URL itself shown


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["abc", ""]).secret_count == 0
    assert Redactor(["abc"]).text("abc") == "abc"
