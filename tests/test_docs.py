"""The docs stay true: every shell command in README.md, ops/RUNBOOK.md and bench/README.md runs
(or is listed below with the reason it does not run here), and docs/ARCHITECTURE.md names every
actor and message the code has, and nothing the code lacks.

Commands run in bash (``pipefail``) from a workspace holding a state directory built by real
cycles (``operator_support``), ``configs/demo.json`` and the runbook's ``$CONFIG``. ``python`` is
this interpreter; ``jq`` is the real one, or ``docs_support``'s stand-in where it is missing.
The commands that need a running daemon (``--daemon``, ``curl`` on ``$PORT``, ``kill -TERM``,
``--run-once`` after it) run verbatim in :func:`test_daemon_commands_run`, ``promtool`` in
:func:`test_promtool_commands_run`; what else runs elsewhere is named in :data:`SKIPPED`.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.docs_support import FILTERS, documented
from _support.localhttp import Answer, LocalServer
from _support.operator_support import operator_state
from _support.support import write_config
from _support.waiting import wait_until

from aistock_actors.cli import app as cli
from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.store.state import HaltState, write_halt

REPO = Path(__file__).resolve().parents[1]
JQ_STAND_IN = REPO / "tests" / "_support" / "docs_support.py"
DAEMON_TEST = "run against a real daemon by tests/test_docs.py::test_daemon_commands_run"
SKIPPED = {
    r"configs/(crypto|alpaca)\.json|^export APCA_": "needs a real exchange or an Alpaca account "
    "over the internet; tests/sources/test_download_cli.py runs --download and "
    "tests/sources/test_bar_close_daemon.py the on_bar_close daemon against local fakes",
    r"^\./demo\.sh$": ".ci/run runs it (fresh venv, sample data, the whole replay)",
    r"--replay|jq '\.replay": "tests/cli/test_replay.py replays into a state directory of its "
    "own (this workspace holds a daemon's history, which a replay refuses) and reads the "
    "replay key of --status --json",
    r"^\./test\.sh$": ".ci/run runs it (it is this test suite)",
    r"^(systemctl|journalctl) ": "needs systemd as PID 1 with the unit installed (not in a "
    "container or CI); tests/ops/test_service_managers.py checks ops/systemd/aistock.service "
    "with `systemd-analyze verify`",
    r"^supervisorctl ": "run verbatim by tests/ops/test_service_managers.py against a real "
    "supervisord on a copy of ops/supervisord/aistock.conf",
    r"^curl ": f"{DAEMON_TEST} with monitoring.listen_port = $PORT",
    r"^promtool ": "run by tests/test_docs.py::test_promtool_commands_run where promtool is "
    "installed (.ci/run installs it)",
    r"--daemon": f"{DAEMON_TEST}: started, then stopped with the runbook's `kill -TERM <pid>`",
    r"--run-once$": f"{DAEMON_TEST}, once the daemon has stopped (incident scenario 2)",
    r"^kill -TERM": f"{DAEMON_TEST}, with the pid from state/daemon.lock",
    r"state/kill_switch_remote\.json": f"{DAEMON_TEST} with headless.kill_switch_check_url",
    r"^\.venv/bin/pip install": "downloads the benchmark dependencies",
    r"^\.venv/bin/ruff check bench/": "`ruff check .` in .ci/run lints bench/ with the rest",
    r"^\.venv/bin/python bench/": "tests/bench/test_bench_commands.py runs each documented "
    "script with --smoke (the full sizes take minutes)",
    r"^(CONFIG|PORT)=|^alias ": "sets the runbook's variables; this test sets CONFIG itself",
    r"^cat state/paper/equity/": "tests/store/test_equity_archive.py runs it on an account whose "
    "older equity points are archived (this workspace's account is too young to have any)",
}
"""Commands deliberately not run by test_documented_command_runs, and what runs them instead."""
DAEMON_COMMANDS = (r"^curl ", r"--daemon", r"--run-once$", r"^kill -TERM",
                   r"state/kill_switch_remote\.json")
"""The SKIPPED rules whose commands test_daemon_commands_run runs, every one of them."""
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

COMMANDS = documented(REPO)
JQ_STAND_IN = REPO / "tests" / "_support" / "docs_support.py"
"""Run as ``jq`` where the real one is missing (``docs_support.jq_main``)."""


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
        _script(bin_dir / "jq", f'exec {sys.executable} {JQ_STAND_IN} "$@"')
    return ws


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def run(command: str, cwd: Path, bin_dir: Path, port: int = 9464
        ) -> subprocess.CompletedProcess[str]:
    env = shell_env(cwd, bin_dir, port)
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          check=False)


def shell_env(cwd: Path, bin_dir: Path, port: int) -> dict[str, str]:
    """The runbook's variables: ``$CONFIG`` (``cwd/config.json``) and ``$PORT``."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CONFIG": str(cwd / "config.json"), "PORT": str(port)}


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
    assert set(DAEMON_COMMANDS) <= set(SKIPPED), set(DAEMON_COMMANDS) - set(SKIPPED)
    for pattern, why in SKIPPED.items():
        assert (pattern in DAEMON_COMMANDS) == (DAEMON_TEST in why), pattern
    assert set(PROSE) <= set(COMMANDS), set(PROSE) - set(COMMANDS)
    ran = [c for c in COMMANDS if skip_reason(c) is None]
    assert len(ran) >= 35, ran  # the extraction found the docs' commands


# --- the commands that need a running daemon, or a tool -----------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



def _cycles(state: Path) -> int:
    try:
        return int(json.loads((state / "supervisor.json").read_text())["cycles_total"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _check_curl(command: str, out: str) -> None:
    """What each documented ``curl`` must print against a healthy daemon."""
    if "%{http_code}" in command:
        assert out.strip() == "200", out
    elif command.endswith("/healthz"):
        assert json.loads(out)["status"] == "ok", out
    elif "/metrics" in command:
        assert "aistock_webhook_deliveries_total" in out, out
    elif command.endswith("| jq ."):
        assert {"halted", "kill_switch", "consecutive_failures"} <= set(json.loads(out)), out
    elif command.endswith("| jq .issues"):
        assert isinstance(json.loads(out), list), out
    else:
        raise AssertionError(f"no expectation for {command!r}: add one to _check_curl")


def test_daemon_commands_run(tmp_path: Path) -> None:
    """The runbook's daemon commands, verbatim: start it by hand (``--daemon``), ask it with
    ``curl`` on ``$PORT``, read ``state/kill_switch_remote.json``, stop it with
    ``kill -TERM <pid>`` (exit 0), then ``--run-once`` with the daemon stopped."""
    commands = sorted(c for c in COMMANDS if any(re.search(p, c) for p in DAEMON_COMMANDS))
    starts = [c for c in commands if "--daemon" in c]
    kills = {re.sub(r"^kill -TERM( <pid>)?$", "kill -TERM <pid>", c)
             for c in commands if c.startswith("kill -TERM")}
    curls = [c for c in commands if c.startswith("curl ")]
    once = [c for c in commands if c.endswith("--run-once")]
    reads = [c for c in commands if "kill_switch_remote.json" in c]
    assert len(starts) == 1 and len(kills) == 1 and curls and once and reads, commands
    assert set(commands) == {*starts, *curls, *once, *reads,
                             *(c for c in commands if c.startswith("kill -TERM"))}, commands
    write_universe_csvs(tmp_path / "data", generate_universe(4, 120, seed=3))
    remote = LocalServer(lambda _request: Answer(200, {"kill_switch": False})).start()
    port = _free_port()
    write_config(tmp_path, monitoring={"listen_port": port, "http_timeout_seconds": 2},
                 headless={"kill_switch_check_url": remote.url("/kill_switch"),
                           "kill_switch_check_interval_seconds": 1},
                 daemon={"interval_minutes": 60})
    (tmp_path / "supervisor.py").symlink_to(REPO / "supervisor.py")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "python", f'exec {sys.executable} "$@"')
    state, log = tmp_path / "state", tmp_path / "daemon.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", starts[0]], cwd=tmp_path,
                                env=shell_env(tmp_path, bin_dir, port), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _cycles(state) >= 1 and (state / "heartbeat.json").exists(), 120,
                   "the daemon's first cycle and heartbeat", log)
        wait_until(lambda: (state / "kill_switch_remote.json").exists(), 10, "the remote check",
                   log)
        for command in reads:
            done = run(command, tmp_path, bin_dir, port)
            assert done.returncode == 0, (command, done.stderr)
            assert json.loads(done.stdout)["last_ok_at"], done.stdout
        curl_missing = shutil.which("curl") is None
        for command in [] if curl_missing else curls:
            done = run(command, tmp_path, bin_dir, port)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            _check_curl(command, done.stdout)
        pid = (state / "daemon.lock").read_text().split()[1]
        done = run(kills.pop().replace("<pid>", pid), tmp_path, bin_dir, port)
        assert done.returncode == 0, done.stderr
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        remote.stop()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert json.loads(text.splitlines()[0])["level"], "--log-format json: one object per line"
    for command in once:
        done = run(command, tmp_path, bin_dir, port)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr[-3000:]}"
        assert ": SUCCEEDED" in done.stdout, done.stdout
    if curl_missing:
        pytest.skip(f"curl is not installed: {len(curls)} curl commands not run")


def test_promtool_commands_run() -> None:
    commands = [c for c in COMMANDS if c.startswith("promtool ")]
    assert commands
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    for command in commands:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=REPO,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "SUCCESS" in done.stdout + done.stderr, done.stdout


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
    _script(stand_in / "jq", f'exec {sys.executable} {JQ_STAND_IN} "$@"')
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
        fake_values, real_values = _json_values(fake.stdout), _json_values(real.stdout)
        if command.endswith("; date +%s"):  # the clock, read once per run: not jq's output
            assert abs(fake_values.pop() - real_values.pop()) <= 60, command
        assert _same(fake_values, real_values), command
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


# --- the operator manual (../shared/spec/headless_autopilot.md) ---------------------------------

MANUAL_SKIPPED = {
    r"^screen ": "starts an interactive terminal multiplexer; the daemon command of the same "
    "block runs below",
    r"grafana:9090": "posts to the reader's own Grafana host (no network here); the "
    "CRITICAL_COUNT line before it runs",
}
"""The manual's commands not run, and why."""
MANUAL_DAEMON = r"--daemon|--schedule"


def _manual_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ws = tmp_path_factory.mktemp("manual")
    operator_state(tmp_path_factory.getbasetemp(), ws)
    (ws / "configs").mkdir()
    shutil.copy(REPO / "configs" / "headless_autopilot_example.json", ws / "configs")
    (ws / "scripts").symlink_to(REPO / "scripts")
    bin_dir = ws / "bin"
    bin_dir.mkdir()
    for name in ("python", "python3"):  # python3: the scripts' shebang, run verbatim
        _script(bin_dir / name, f'exec {sys.executable} "$@"')
    return ws, bin_dir


def _manual_env(ws: Path, bin_dir: Path) -> dict[str, str]:
    env = shell_env(ws, bin_dir, 9464)
    env.pop("COLUMNS", None)  # `ps aux` in a pipe cuts lines at $COLUMNS
    return env


def test_manual_commands_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every command of the manual, verbatim: the file commands and CLI calls on a state dir
    built by real cycles, ``--run-once`` twice, then each daemon command started, seen by
    ``--status`` as running and by ``ps aux | grep headless_autopilot``, stopped by SIGTERM."""
    from _support.docs_support import MANUAL, manual_commands

    if not MANUAL.exists():
        pytest.skip(f"the manual is not beside the repository ({MANUAL})")
    commands = manual_commands()
    ws, bin_dir = _manual_workspace(tmp_path_factory)
    env = _manual_env(ws, bin_dir)
    skipped = [c for c in commands if any(re.search(p, c) for p in MANUAL_SKIPPED)]
    assert len(skipped) == len(MANUAL_SKIPPED), skipped
    daemons = [c for c in commands if re.search(MANUAL_DAEMON, c)]
    once = [c for c in commands if c.endswith("--run-once")]
    ps = [c for c in commands if c.startswith("ps ")]
    simple = [c for c in commands if c not in {*skipped, *daemons, *once, *ps}]
    assert len(daemons) == 3 and len(once) == 2 and len(ps) == 1, commands

    def sh(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ws, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=300, check=False)

    for command in simple:
        done = sh(command)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, done.stderr
        (ws / "state" / "KILL_SWITCH").unlink(missing_ok=True)
        (ws / "state" / "HALTED").unlink(missing_ok=True)
    for command in once:
        done = sh(command)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr[-3000:]}"
        assert ": SUCCEEDED" in done.stdout, done.stdout
    status = [sys.executable, str(REPO / "supervisor.py"), "config.json", "--status", "--json"]
    for command in daemons:
        log = ws / "daemon.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(["bash", "-c", command], cwd=ws, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            def running() -> bool:
                done = subprocess.run(status, cwd=ws, capture_output=True, text=True,
                                      timeout=60, check=True)
                return bool(json.loads(done.stdout)["daemon"]["state"] == "running")

            wait_until(running, 120, f"{command} running", log, poll=0.2)
            pid = int((ws / "state" / "daemon.lock").read_text().split()[1])
            if "headless_autopilot" in command:
                listing = sh(ps[0]).stdout
                assert any(line.split()[1] == str(pid) for line in listing.splitlines()), listing
            os.kill(pid, signal.SIGTERM)
            assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
