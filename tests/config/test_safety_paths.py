"""#17: a config that would leave the remote kill switch, the health report or a webhook unable to
send is a start-up error naming the keys (``--run-once`` exits 2, nothing runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aistock_actors.config.loading import parse_config
from aistock_actors.config.safety_paths import check_safety_paths, safety_path_problems
from aistock_actors.errors import ConfigError

SUPERVISOR = Path(__file__).resolve().parents[2] / "supervisor.py"


def problems(doc: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    return safety_path_problems(parse_config(json.dumps(doc))[0], environ or {})


def test_credentials_in_the_kill_switch_url_plus_a_token_env_is_refused() -> None:
    doc = {"headless": {"kill_switch_check_url": "https://ops:pw@example.invalid/kill",
                        "kill_switch_token_env": "KS_TOKEN"}}
    (problem,) = problems(doc, {"KS_TOKEN": "t"})
    assert problem.startswith("headless.kill_switch_check_url carries credentials and "
                              "headless.kill_switch_token_env adds a bearer token")


def test_a_token_env_that_is_not_set_is_refused() -> None:
    doc = {"headless": {"kill_switch_check_url": "https://example.invalid/kill",
                        "kill_switch_token_env": "KS_TOKEN"}}
    assert problems(doc) == ["headless.kill_switch_token_env: environment variable KS_TOKEN is "
                             "not set, so every remote kill-switch check would fail"]
    assert problems(doc, {"KS_TOKEN": "t"}) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("headless.external_health_report_url", "ftp://example.invalid/h"),
     ("headless.kill_switch_check_url", "https:///no-host"),
     ("supervision.notification_webhooks.slack", "hooks.slack.com/x"),
     ("supervision.notification_webhooks.generic", "http://host:port/x")],
)
def test_a_url_that_cannot_be_sent_to_names_its_key(key: str, value: str) -> None:
    section, *rest = key.split(".")
    doc: dict[str, Any] = {section: {}}
    node = doc[section]
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = value
    found = problems(doc)
    assert len(found) == 1 and found[0].startswith(f"{key}: not a")


def test_a_webhook_env_without_value_is_refused_and_a_literal_fallback_is_fine() -> None:
    doc = {"supervision": {"notification_webhooks": {"generic_env": "HOOK_URL"}}}
    assert problems(doc) == ["supervision.notification_webhooks.generic_env: environment "
                             "variable HOOK_URL is not set and "
                             "supervision.notification_webhooks.generic is empty, so nothing "
                             "could be sent"]
    doc["supervision"]["notification_webhooks"]["generic"] = "https://example.invalid/h"
    assert problems(doc) == []
    with pytest.raises(ConfigError, match="a safety path could never send"):
        check_safety_paths(parse_config(json.dumps({"headless": {
            "external_health_report_url": "nonsense"}}))[0], {})


def test_run_once_refuses_to_start_naming_the_keys(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"), "models_dir": str(tmp_path / "models"),
        "headless": {"kill_switch_check_url": "https://ops:pw@127.0.0.1:9/kill",
                     "kill_switch_token_env": "AISTOCK_TEST_KS_TOKEN"}}))
    env = {**os.environ, "AISTOCK_TEST_KS_TOKEN": "secret"}
    done = subprocess.run([sys.executable, str(SUPERVISOR), str(config), "--run-once"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert "headless.kill_switch_check_url carries credentials" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "state" / "audit").exists()
