"""``--ack ID|all`` and the truthful ``--status`` lines: open vs acknowledged alert counts, the
detail column of every step, and the one-line why of the active model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _support.operator_support import operator_state
from _support.support import write_config

from aistock_actors.config import load_config
from aistock_actors.services import operator_actions as operator
from aistock_actors.services.promotion_decisions import active_model_why
from aistock_actors.store.alerts import ACK_FILE, AlertSink, acknowledge, alert_counts

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SUPERVISOR, str(config), *args], cwd=config.parent,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return operator_state(tmp_path_factory.getbasetemp(), tmp_path_factory.mktemp("ack"))


def test_ack_one_then_all_moves_alerts_from_open_to_acknowledged(config: Path) -> None:
    state = config.parent / "state"
    before = json.loads(cli(config, "--status", "--json").stdout)
    assert before["alerts"]["critical"] == 1 and before["alerts_acknowledged"]["critical"] == 0
    critical = next(a for a in before["recent_alerts"] if a["severity"] == "critical")
    done = cli(config, "--ack", critical["id"])
    assert done.returncode == 0 and "acknowledged 1 alert(s)" in done.stdout, done.stderr
    after = json.loads(cli(config, "--status", "--json").stdout)
    assert after["alerts"]["critical"] == 0 and after["alerts_acknowledged"]["critical"] == 1
    assert critical["id"] not in [a["id"] for a in after["recent_alerts"]]
    assert (state / "alerts" / "critical" / f"{critical['id']}.json").exists()  # layout kept
    again = cli(config, "--ack", critical["id"])
    assert again.returncode == 0 and "already acknowledged" in again.stdout
    done = cli(config, "--ack", "all")
    assert done.returncode == 0 and "open now: none" in done.stdout, done.stdout
    text = cli(config, "--status").stdout
    assert "info 0, warning 0, error 0, critical 0 open; acknowledged: " in text, text
    audit = [json.loads(x) for x in (state / "audit" / "log.jsonl").read_text().splitlines()]
    acks = [r for r in audit if r["action"] == "alerts_acknowledged"]
    assert [r["actor"] for r in acks] == ["operator", "operator"]
    assert acks[0]["details"]["ids"] == [critical["id"]]


def test_an_unknown_id_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    AlertSink(tmp_path / "state" / "alerts").raise_alert("error", "x", "an alert", notify=False)
    done = cli(config, "--ack", "no-such-alert")
    assert done.returncode == 2 and "no alert with id 'no-such-alert'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "alerts" / ACK_FILE).exists()


def test_a_damaged_ack_file_falls_back_to_its_backup(tmp_path: Path) -> None:
    root = tmp_path / "alerts"
    sink = AlertSink(root)
    first = sink.raise_alert("critical", "a", "first", notify=False)
    sink.raise_alert("critical", "b", "second", notify=False)
    assert acknowledge(root, first.stem, "operator") == [first.stem]
    acknowledge(root, "all", "web")  # the first ack file is now the .bak
    (root / ACK_FILE).write_text("{torn")
    open_, acked = alert_counts(root)
    assert acked["critical"] >= 1 and open_["critical"] + acked["critical"] == 2


def test_every_step_has_a_detail_and_the_model_has_a_why(config: Path) -> None:
    text = cli(config, "--status").stdout
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("last cycle:"))
    steps = [line for line in lines[start + 1:] if line.startswith("  ")][:3]
    assert steps and all(len(line.split("s  ", 1)) == 2 and line.split("s  ", 1)[1].strip()
                         for line in steps), steps
    why = next(line for line in lines if line.startswith("why:"))
    assert "active since" in why and "passed" in why, why


def test_why_names_the_failed_stage_when_no_model_is_active(tmp_path: Path) -> None:
    verdict = {"id": "m-2@t", "model_id": "m-2", "status": "rejected", "reasons": ["r"],
               "stages": [{"stage": 1, "name": "policy_gates", "status": "failed",
                           "value": -1.5, "threshold": ">= 0.6"}]}
    assert active_model_why(None, [verdict]) == (
        "no active model: last candidate m-2 rejected at stage 1 (policy_gates): -1.50, "
        "needs >= 0.6")
    assert active_model_why(None, []) == "no active model: no candidate has been judged yet"
    st = operator.status(load_config(write_config(tmp_path)))
    assert st.active_model_why == "no active model: no candidate has been judged yet"
