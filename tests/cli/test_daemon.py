"""A real daemon subprocess: file kill switch, --unkill, SIGTERM, and one daemon per state dir."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _support.support import write_config

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; return the seconds it took (bounded by ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - start


def cycles_total(state_dir: Path) -> int:
    try:
        return int(json.loads((state_dir / "supervisor.json").read_text())["cycles_total"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def cli(config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SUPERVISOR, str(config), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def daemon_env(tmp_path: Path) -> tuple[Path, Path]:
    write_universe_csvs(tmp_path / "data", generate_universe(4, 120, seed=3))
    config = write_config(tmp_path, supervision={"kill_switch_poll_seconds": 0.1})
    return tmp_path, config


def start_daemon(tmp_path: Path, config: Path, name: str = "daemon") -> subprocess.Popen[str]:
    with open(tmp_path / f"{name}.log", "w") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            [sys.executable, SUPERVISOR, str(config), "--daemon", "--interval-minutes", "0.01",
             "--log-format", "text"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            text=True)


def stop(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_kill_switch_file_halts_daemon_and_unkill_resumes(daemon_env: tuple[Path, Path]) -> None:
    tmp_path, config = daemon_env
    state_dir = tmp_path / "state"
    proc = start_daemon(tmp_path, config)
    try:
        wait_for(lambda: cycles_total(state_dir) >= 1, 60, "the first cycle")
        (state_dir / "KILL_SWITCH").touch()
        wait_for(lambda: (state_dir / "HALTED").exists(), 5, "the halt after touch KILL_SWITCH")
        halt = json.loads((state_dir / "HALTED").read_text())
        assert halt["kind"] == "kill_switch" and halt["reason"] == "kill_switch_activated"
        critical = state_dir / "alerts" / "critical"
        wait_for(lambda: bool(list(critical.glob("*kill_switch_activated*"))), 5,
                 "the critical alert (written right after HALTED)")
        halted_at = cycles_total(state_dir)
        assert proc.poll() is None  # halted, not dead: it keeps watching and reporting

        status = cli(config, "--status", cwd=tmp_path)
        assert "HALTED:" in status.stdout and "kill switch:          ACTIVE" in status.stdout

        result = cli(config, "--unkill", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        try:
            wait_for(lambda: cycles_total(state_dir) > halted_at, 120, "cycles after --unkill")
        except AssertionError as exc:  # seen once under a heavily loaded full run: keep evidence
            tail = (tmp_path / "daemon.log").read_text()[-4000:]
            raise AssertionError(
                f"{exc}; cycles_total={cycles_total(state_dir)} halted_at={halted_at}\n"
                f"--- daemon.log tail ---\n{tail}") from None
    finally:
        code = stop(proc)
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    verify = cli(config, "--audit-verify", cwd=tmp_path)
    assert verify.returncode == 0 and "hash chain intact" in verify.stdout
    actions = [json.loads(x)["action"]
               for x in (state_dir / "audit" / "log.jsonl").read_text().splitlines()]
    assert "kill_switch_activated" in actions and "kill_switch_deactivated" in actions
    saved = json.loads((state_dir / "supervisor.json").read_text())
    assert saved["last_cycle"]["outcome"] in ("succeeded", "aborted")


def test_second_daemon_on_same_state_dir_is_refused(daemon_env: tuple[Path, Path]) -> None:
    tmp_path, config = daemon_env
    proc = start_daemon(tmp_path, config)
    try:
        lock = tmp_path / "state" / "daemon.lock"
        wait_for(lambda: lock.exists() and b"daemon" in lock.read_bytes(), 60, "the lock")
        second = cli(config, "--daemon", cwd=tmp_path)
        assert second.returncode == 4
        assert "already running" in second.stderr and "Traceback" not in second.stderr
        once = cli(config, "--run-once", cwd=tmp_path)
        assert once.returncode == 4
    finally:
        assert stop(proc) == 0


def test_sigterm_stops_cleanly_with_consistent_state(daemon_env: tuple[Path, Path]) -> None:
    tmp_path, config = daemon_env
    state_dir = tmp_path / "state"
    proc = start_daemon(tmp_path, config)
    try:
        wait_for(lambda: cycles_total(state_dir) >= 2, 60, "two cycles")
    finally:
        code = stop(proc)
    assert code == 0
    log = (tmp_path / "daemon.log").read_text()
    assert "received SIGTERM: stopping cleanly" in log and "daemon stopped cleanly" in log
    status = cli(config, "--status", "--json", cwd=tmp_path)
    data = json.loads(status.stdout)
    assert data["halted"] is False and data["cycles_total"] >= 2
    # The lock died with the process: a new run can start at once.
    assert cli(config, "--run-once", cwd=tmp_path).returncode == 0


def test_deleting_the_lock_file_neither_admits_a_second_daemon_nor_goes_unnoticed(
    daemon_env: tuple[Path, Path],
) -> None:
    """#17: ``rm state/daemon.lock`` + a second daemon -> exit 4; the first halts on it."""
    tmp_path, config = daemon_env
    state_dir = tmp_path / "state"
    proc = start_daemon(tmp_path, config)
    try:
        lock = state_dir / "daemon.lock"
        wait_for(lambda: lock.exists() and b"daemon" in lock.read_bytes(), 60, "the lock")
        lock.unlink()
        second = cli(config, "--daemon", cwd=tmp_path)
        assert second.returncode == 4, second.stderr
        assert "already running" in second.stderr and "Traceback" not in second.stderr
        wait_for(lambda: (state_dir / "HALTED").exists(), 30, "the halt on the lost lock file")
        halt = json.loads((state_dir / "HALTED").read_text())
        assert halt["reason"] == "daemon_lock_lost" and "daemon.lock" in halt["message"]
    finally:
        assert stop(proc) == 0


def test_daemon_on_unchanged_data_stores_no_artifact_for_ten_cycles(tmp_path: Path) -> None:
    """The retraining cadence: with no new bar a cycle trains nothing and stores no model
    artifact, manifest entry or alert; its summary says why."""
    from _support.fault_harness import reliability_config, write_bars

    write_bars(tmp_path, 300)
    config = reliability_config(tmp_path, training={"retrain_every_bars": 21})
    state_dir = tmp_path / "state"
    manifest = state_dir / "promotion" / "manifest.json"

    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    proc = start_daemon(tmp_path, config)
    try:
        wait_for(lambda: cycles_total(state_dir) >= 1, 90, "the first cycle (it trains)")
        models, alerts = files(tmp_path / "models"), files(state_dir / "alerts")
        entries = json.loads(manifest.read_text())
        assert len(entries) == 1
        wait_for(lambda: cycles_total(state_dir) >= 11, 90, "ten more cycles")
    finally:
        assert stop(proc) == 0
    assert files(tmp_path / "models") == models
    assert files(state_dir / "alerts") == alerts
    assert json.loads(manifest.read_text()) == entries
    last = json.loads((state_dir / "supervisor.json").read_text())["last_cycle"]
    train = next(s for s in last["steps"] if s["name"] == "train")
    assert train["status"] == "ok" and train["data"]["reason"] == "no_new_bar", train
