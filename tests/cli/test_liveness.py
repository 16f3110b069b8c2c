"""``--status`` tells the truth about the process: a real daemon started with the manual's
``scripts/headless_autopilot.py``, SIGKILLed, stopped with SIGTERM; a held lock without heartbeat;
and neither ``--status`` nor ``--kill`` imports scikit-learn."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _support.support import write_config
from _support.waiting import wait_until

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs
from aistock_actors.runtime.clock import FakeClock
from aistock_actors.services.liveness import STALE_AFTER_S, liveness
from aistock_actors.store.lock import DaemonLock

REPO = Path(__file__).resolve().parents[2]
SCRIPT = str(REPO / "scripts" / "headless_autopilot.py")


def status_json(config: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, SCRIPT, str(config), "--status", "--json"],
                          cwd=config.parent, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def daemon_state(config: Path) -> str:
    daemon = status_json(config)["daemon"]
    assert isinstance(daemon, dict)
    return str(daemon["state"])


def start(tmp_path: Path, config: Path, name: str) -> subprocess.Popen[bytes]:
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.Popen([sys.executable, SCRIPT, str(config), "--daemon",
                                 "--interval-minutes", "60"], cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT)


def test_status_follows_a_real_daemon_through_sigkill_and_sigterm(tmp_path: Path) -> None:
    write_universe_csvs(tmp_path / "data", generate_universe(3, 120, seed=3))
    config = write_config(tmp_path)
    assert daemon_state(config) == "not_running"
    proc = start(tmp_path, config, "first")
    try:
        wait_until(lambda: (tmp_path / "state" / "heartbeat.json").exists(), 120,
                   "the first heartbeat", tmp_path / "first.log")
        st = status_json(config)
        daemon = st["daemon"]
        assert isinstance(daemon, dict)
        assert daemon["state"] == "running" and daemon["pid"] == proc.pid, daemon
        assert str(daemon["summary"]).startswith(f"running, pid {proc.pid}")
        if shutil.which("ps"):  # the runbook's `ps aux | grep headless_autopilot`
            env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # no 80-column cut
            ps = subprocess.run(["ps", "aux"], capture_output=True, text=True, check=True,
                                env=env).stdout
            assert any("headless_autopilot" in line and str(proc.pid) in line.split()[1]
                       for line in ps.splitlines()), ps
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        st = status_json(config)
        assert st["daemon"]["state"] == "not_running", st["daemon"]  # type: ignore[index]
        assert "not running (last heartbeat" in st["daemon"]["summary"]  # type: ignore[index]
        plain = subprocess.run([sys.executable, SCRIPT, str(config), "--status"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60, check=True).stdout
        assert "process:              not running (last heartbeat" in plain
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    second = start(tmp_path, config, "second")
    try:
        wait_until(lambda: daemon_state(config) == "running", 120, "the second daemon",
                   tmp_path / "second.log", poll=0.2)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)
    assert daemon_state(config) == "not_running"


def test_a_held_lock_with_an_old_heartbeat_is_a_stale_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    clock = FakeClock()
    assert liveness(state, clock).summary == "not running (no heartbeat ever)"
    (state / "heartbeat.json").write_text(json.dumps({"ts": clock.time() - 600}))
    with DaemonLock(state, "daemon"):
        held = liveness(state, clock)
        assert held.state == "stale_lock" and held.pid == os.getpid(), held
        assert f"pid {os.getpid()} (daemon) holds daemon.lock" in held.summary
        (state / "heartbeat.json").write_text(json.dumps({"ts": clock.time() - 2}))
        fresh = liveness(state, clock)
        assert fresh.state == "running" and "heartbeat 2 s ago" in fresh.summary, fresh
    after = liveness(state, clock)
    assert after.state == "not_running" and after.summary == "not running (last heartbeat 2 s ago)"
    assert STALE_AFTER_S >= 10


def test_a_garbled_lock_or_heartbeat_file_is_not_running_not_a_crash(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "daemon.lock").write_bytes(b"\xff\xfe garbage")
    (state / "heartbeat.json").write_text("{torn")
    found = liveness(state, FakeClock())
    assert found.state == "not_running" and found.pid is None


@pytest.mark.parametrize("flag", ["--status", "--kill"])
def test_status_and_kill_never_import_the_ml_stack(tmp_path: Path, flag: str) -> None:
    config = write_config(tmp_path)
    code = (
        "import sys, io, contextlib\n"
        "from aistock_actors.cli import app\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = app.main([{str(config)!r}, {flag!r}, '--json'] if {flag!r} == '--status'"
        f" else [{str(config)!r}, {flag!r}])\n"
        "heavy = sorted(m for m in ('sklearn', 'scipy', 'joblib', 'matplotlib') "
        "if m in sys.modules)\n"
        "print(rc, heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0 []", done.stdout
