"""The files under ops/ parse and refer only to things that exist: metric names, CLI flags.

PyYAML is not a dependency, so the YAML files get a small structural check (no tabs, two-space
indentation, ``key: value`` / ``- item`` lines) plus regex extraction of what matters; metric
names are checked against the registry the daemon actually serves (promtool-style).
"""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import pytest

from aistock_actors.cli.app import build_parser
from aistock_actors.net.prometheus import NetMetrics
from aistock_actors.runtime.telemetry import Telemetry

OPS = Path(__file__).resolve().parents[2] / "ops"
METRIC = re.compile(r"\baistock_[a-z_]+\b")


def served_metric_names() -> set[str]:
    """Every series name /metrics can expose (counters with their ``_total`` samples)."""
    telemetry = Telemetry()
    NetMetrics(telemetry.registry)
    names: set[str] = set()
    for family in telemetry.registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
    return names


def check_yaml_shape(text: str) -> None:
    """A minimal YAML sanity check for our config-style files."""
    block_indent: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        assert "\t" not in line, f"line {number}: tab"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None:
            if indent > block_indent:
                continue  # inside a `>-` block scalar
            block_indent = None
        assert indent % 2 == 0, f"line {number}: odd indentation"
        body = stripped[2:] if stripped.startswith("- ") else stripped
        assert re.match(r"^[A-Za-z_][\w.-]*:( |$)", body) or not body.endswith(":"), (
            f"line {number}: not `key: value`: {line!r}"
        )
        if body.endswith((": >-", ": |", ": >")):
            block_indent = indent


def test_alert_rules_cover_the_issue_and_use_served_metrics() -> None:
    text = (OPS / "prometheus" / "alerts.yml").read_text()
    check_yaml_shape(text)
    assert text.lstrip("# -\n").startswith("groups:") or "\ngroups:\n" in text
    names = re.findall(r"^\s+- alert: (\w+)$", text, flags=re.M)
    assert len(names) == len(set(names))
    assert {
        "AistockHalted",
        "AistockKillSwitchActive",
        "AistockNoSuccessfulCycle",
        "AistockCycleFailures",
        "AistockActorRestartsRising",
        "AistockHeartbeatSilent",
    } <= set(names)
    assert text.count("expr:") == len(names) and text.count("severity:") == len(names)
    rules = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("#"))
    used = set(METRIC.findall(rules))
    assert used and used <= served_metric_names(), used - served_metric_names()


def test_prometheus_scrape_config_points_at_metrics_and_loads_the_rules() -> None:
    text = (OPS / "prometheus" / "prometheus.yml").read_text()
    check_yaml_shape(text)
    assert re.search(r"^scrape_configs:$", text, flags=re.M)
    assert "- job_name: aistock" in text and "metrics_path: /metrics" in text
    assert re.search(r"rule_files:\n\s+- alerts\.yml", text)


def test_grafana_dashboard_is_valid_json_on_served_metrics() -> None:
    dashboard = json.loads((OPS / "grafana" / "aistock-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = {m for e in exprs for m in METRIC.findall(e)}
    assert used <= served_metric_names(), used - served_metric_names()
    for required in ("aistock_halted", "aistock_kill_switch_active",
                     "aistock_heartbeat_timestamp_seconds", "aistock_cycles_total"):
        assert required in used


def test_systemd_unit_and_supervisord_program() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((OPS / "systemd" / "aistock.service").read_text())
    service = unit["Service"]
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 0 and service["WorkingDirectory"].startswith("/")
    assert "--daemon --log-format json" in service["ExecStart"]
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    assert int(unit["Unit"]["StartLimitIntervalSec"]) > 0  # a [Unit] key: ignored in [Service]
    assert "StartLimitIntervalSec" not in service and "StartLimitBurst" not in service

    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string((OPS / "supervisord" / "aistock.conf").read_text())
    program = conf["program:aistock"]
    assert "--daemon --log-format json" in program["command"]
    assert program["stopsignal"] == "TERM" and int(program["stopwaitsecs"]) > 0


def test_runbook_commands_use_real_cli_flags() -> None:
    text = (OPS / "RUNBOOK.md").read_text()
    flags = set(re.findall(r"supervisor\.py \$CONFIG ((?:--[a-z-]+ ?)+)", text))
    used = {flag for group in flags for flag in group.split()}
    known = {s for action in build_parser()._actions for s in action.option_strings}
    assert {"--status", "--kill", "--unkill", "--resume", "--audit-verify", "--run-once"} <= used
    assert used <= known, used - known
    for needle in ("ls -lht state/alerts/critical/", 'select(.action=="autopilot_failed")',
                   "grep risk_limits_adjusted state/audit/log.jsonl", "/healthz"):
        assert needle in text


@pytest.mark.parametrize("name", ["alerts.yml", "prometheus.yml"])
def test_yaml_checker_catches_a_tab(name: str) -> None:
    broken = (OPS / "prometheus" / name).read_text().replace("  ", "\t", 1)
    with pytest.raises(AssertionError):
        check_yaml_shape(broken)
