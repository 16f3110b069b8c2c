"""The docs stay true: every shell command in README.md, ops/RUNBOOK.md and bench/README.md runs
(or is listed below with the reason it does not run here), and docs/ARCHITECTURE.md names every
actor and message the code has, and nothing the code lacks.

Commands run in bash (``pipefail``) from a workspace holding a state directory built by real
cycles (``operator_support``), ``configs/demo.json`` and the runbook's ``$CONFIG``. ``python`` is
this interpreter; ``jq`` is the real one, or ``docs_support``'s stand-in where it is missing.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docs_support import FILTERS, fenced_commands, inline_commands
from operator_support import operator_state

from aistock_actors import cli
from aistock_actors.store.state import HaltState, write_halt
from aistock_actors.wiring import default_specs

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "README.md": ("fenced", "inline"),
    "ops/RUNBOOK.md": ("fenced", "inline"),
    "bench/README.md": ("fenced",),
}
SKIPPED = {
    r"^\./demo\.sh$": ".ci/run runs it (fresh venv, sample data, one cycle)",
    r"^\./test\.sh$": ".ci/run runs it (it is this test suite)",
    r"^(systemctl|supervisorctl|journalctl) ": "needs the service installed from ops/systemd or "
    "ops/supervisord; tests/net/test_ops_files.py checks those files",
    r"^curl ": "needs a running daemon with monitoring.listen_port; tests/net/"
    "test_monitoring_server.py and test_daemon_ops.py exercise /healthz, /metrics, /report",
    r"^promtool ": "Prometheus' tool; tests/net/test_ops_files.py parses the alert rules",
    r"--daemon": "runs until stopped; tests/cli/test_daemon.py runs and stops the daemon",
    r"--run-once$": "a full cycle; ./demo.sh in .ci/run and tests/cli/test_run_once.py run it",
    r"^kill -TERM": "needs a daemon's pid; tests/cli/test_daemon.py sends SIGTERM",
    r"state/kill_switch_remote\.json": "exists only with headless.kill_switch_check_url; "
    "tests/net/test_remote_kill_switch.py checks it",
    r"^\.venv/bin/pip install": "downloads the benchmark dependencies",
    r"^\.venv/bin/ruff check bench/": "`ruff check .` in .ci/run lints bench/ with the rest",
    r"^\.venv/bin/python bench/": "a benchmark run (minutes); the brackets are optional flags",
    r"^(CONFIG|PORT)=|^alias ": "sets the runbook's variables; this test sets CONFIG itself",
}
"""Commands deliberately not run here, and where they are covered instead."""
PROSE = {
    "python -m aistock_actors CONFIG ...": "a synopsis",
    "kill switch: ACTIVE": "--status output",
    "ls -t": "part of the sentence about ls -t",
    """jq '.[] | select(.status=="approved")'""": "the filter alone; the README's block runs it",
}
"""Inline code that looks like a command but is a fragment in a sentence."""
SETUP_HALTED = {"jq .details state/HALTED"}
SETUP_KILL_SWITCH = {"ls -l state/KILL_SWITCH"}
OUTPUT_REQUIRED = {"--status | grep", "ls state/alerts/critical/", "jq . state/risk/limits.json"}


def canonical(command: str) -> str:
    """Commands that differ only in the config path or the ``--out`` file run once."""
    command = command.replace("configs/demo.json", "$CONFIG")
    return re.sub(r"--out \S+", "--out FILE", command)


def documented() -> dict[str, list[str]]:
    """Every distinct command of the docs (first spelling) -> where it and its variants appear."""
    found: dict[str, list[str]] = {}
    first: dict[str, str] = {}
    for doc, kinds in DOCS.items():
        text = (REPO / doc).read_text(encoding="utf-8")
        commands = fenced_commands(text) if "fenced" in kinds else []
        commands += inline_commands(text) if "inline" in kinds else []
        for command in commands:
            spelled = first.setdefault(canonical(command), command)
            where = doc if spelled == command else f"{doc} ({command})"
            found.setdefault(spelled, []).append(where)
    return found


COMMANDS = documented()


def skip_reason(command: str) -> str | None:
    if command in PROSE:
        return f"prose, not a command: {PROSE[command]}"
    return next((f"{why}" for pattern, why in SKIPPED.items() if re.search(pattern, command)),
                None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("docs")
    operator_state(tmp_path_factory.getbasetemp(), ws)
    (ws / "configs").mkdir()
    shutil.copy(REPO / "configs" / "demo.json", ws / "configs" / "demo.json")
    shutil.copy(REPO / "README.md", ws / "README.md")
    (ws / "supervisor.py").symlink_to(REPO / "supervisor.py")
    (ws / "state" / "daemon.lock").write_text(f"pid {os.getpid()} (daemon)\n")
    bin_dir = ws / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "python", f'exec {sys.executable} "$@"')
    if shutil.which("jq") is None:
        _script(bin_dir / "jq", f'exec {sys.executable} {REPO / "tests" / "docs_support.py"} "$@"')
    return ws


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run(command: str, cwd: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "CONFIG": str(cwd / "config.json"), "PORT": "9464"}
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture()
def fresh(workspace: Path) -> Iterator[Path]:
    """The workspace with a fresh heartbeat, no kill switch and no halt after each command."""
    (workspace / "state" / "heartbeat.json").touch()
    yield workspace
    (workspace / "state" / "KILL_SWITCH").unlink(missing_ok=True)
    (workspace / "state" / "HALTED").unlink(missing_ok=True)


def set_up(command: str, state: Path) -> None:
    """What the doc assumes at that point: a halt to inspect, a kill switch to look at."""
    if command in SETUP_HALTED:
        write_halt(state, HaltState(kind="kill_switch", reason="kill_switch_activated",
                                    message="kill switch activated (file): state/KILL_SWITCH",
                                    halted_at="2026-01-13T12:00:00Z", details={"source": "file"}))
    if command in SETUP_KILL_SWITCH:
        (state / "KILL_SWITCH").touch()


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=lambda c: c[:60])
def test_documented_command_runs(command: str, fresh: Path) -> None:
    reason = skip_reason(command)
    if reason is not None:
        pytest.skip(f"{' + '.join(COMMANDS[command])}: {reason}")
    if command.startswith("ps ") and shutil.which("ps") is None:
        pytest.skip("ps is not installed here")
    set_up(command, fresh / "state")
    cwd = REPO if command.startswith(".venv/") else fresh
    before = (fresh / "README.md").read_bytes()
    done = run(command, cwd, fresh / "bin")
    where = " + ".join(COMMANDS[command])
    assert done.returncode == 0, f"{where}: {command}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    if any(part in command for part in OUTPUT_REQUIRED):
        assert done.stdout.strip(), f"{where}: {command} printed nothing"
    if "configdoc --write README.md" in command:  # the generated block was already current
        assert (fresh / "README.md").read_bytes() == before, "README config reference is stale"
    if "/tmp/aistock-report.html" in command:
        Path("/tmp/aistock-report.html").unlink(missing_ok=True)


def test_every_skip_rule_is_still_used() -> None:
    for pattern in SKIPPED:
        assert any(re.search(pattern, c) for c in COMMANDS), f"stale skip rule {pattern}"
    assert set(PROSE) <= set(COMMANDS), set(PROSE) - set(COMMANDS)
    ran = [c for c in COMMANDS if skip_reason(c) is None]
    assert len(ran) >= 35, ran  # the extraction found the docs' commands


def _json_values(text: str) -> list[Any]:
    decoder, index, out = json.JSONDecoder(), 0, []
    text = text.strip()
    while index < len(text):
        value, index = decoder.raw_decode(text, index)
        out.append(value)
        while index < len(text) and text[index].isspace():
            index += 1
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(
            a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_jq_stand_in_agrees_with_jq(workspace: Path, tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the stand-in is all there is to compare")
    stand_in = tmp_path / "bin"
    stand_in.mkdir()
    _script(stand_in / "jq", f'exec {sys.executable} {REPO / "tests" / "docs_support.py"} "$@"')
    used = set()
    for command in COMMANDS:
        if "jq" not in command or "python" in command or skip_reason(command) is not None:
            continue
        set_up(command, workspace / "state")
        real = run(command, workspace, workspace / "bin")
        fake = run(command, workspace, stand_in)
        (workspace / "state" / "HALTED").unlink(missing_ok=True)
        (workspace / "state" / "KILL_SWITCH").unlink(missing_ok=True)
        assert fake.returncode == real.returncode == 0, (command, fake.stderr, real.stderr)
        assert _same(_json_values(fake.stdout), _json_values(real.stdout)), command
        used |= {f for f in FILTERS if f"'{f}'" in command or f" {f} " in f"{command} "}
    assert len(used) >= 10, used


# --- docs/ARCHITECTURE.md ------------------------------------------------------------------------

def _classes(package: Path) -> set[str]:
    names = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        names |= {t.id for n in tree.body if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name)}
    return names


def _message_classes() -> set[str]:
    names = set()
    for path in (REPO / "aistock_actors" / "messages").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    return names


def test_architecture_names_every_actor_and_message_and_nothing_else() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    spans = set(re.findall(r"`([^`\n]+)`", text))
    for spec in default_specs():
        assert f"`{spec.name}`" in text, spec.name
        assert f"`{spec.actor_class.__name__}`" in text, spec.actor_class.__name__
        module = sys.modules[spec.actor_class.__module__].__file__
        assert module is not None
        assert f"`{Path(module).relative_to(REPO)}`" in text, module
    for message in _message_classes():
        assert f"`{message}`" in text, f"message {message} missing from the map"
    for span in spans:
        if re.fullmatch(r"aistock_actors/[\w/]+\.py", span):
            assert (REPO / span).is_file(), span
    known = _classes(REPO / "aistock_actors")
    for span in spans:
        if re.fullmatch(r"[A-Z][a-z]+(?:[A-Z][a-z]+)+", span):
            assert span in known, f"{span} is named in ARCHITECTURE.md but not in the code"


def test_readme_documents_every_cli_flag() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for action in cli.build_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in ("--help", "--version"):
                assert f"`{flag}" in text or f" {flag}" in text, flag
