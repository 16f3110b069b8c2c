"""The kill loops' fork server (``_support.forkserver``) behaves as ``supervisor.py`` run anew:
same exit code and output, a real process that SIGKILL ends with ``-9``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _support.fault_harness import SUPERVISOR, reliability_config, write_bars
from _support.forkserver import ForkServer
from _support.waiting import wait_until


@pytest.mark.parametrize(("args", "code", "words"), [
    (("missing.json", "--run-once"), 2, "missing.json: cannot read config file"),
    (("--help",), 0, "--run-once"),  # argparse ends with SystemExit(0)
])
def test_a_forked_main_exits_and_prints_as_supervisor_py_does(
    tmp_path: Path, fork_server: ForkServer, args: tuple[str, ...], code: int, words: str
) -> None:
    argv = [str(tmp_path / args[0]), *args[1:]] if args[0].endswith(".json") else list(args)
    log = tmp_path / "forked.log"
    forked = fork_server.spawn(argv, tmp_path, log)
    assert forked.wait(timeout=60) == code
    execed = subprocess.run([sys.executable, SUPERVISOR, *argv], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert execed.returncode == code
    assert log.read_text() == execed.stdout + execed.stderr
    assert words in log.read_text()
    again = fork_server.spawn(argv, tmp_path, log, append=True)  # the log keeps the first run
    assert again.wait(timeout=60) == code
    assert log.read_text() == 2 * (execed.stdout + execed.stderr)


def test_a_forked_daemon_runs_cycles_until_sigkill_ends_it(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    write_bars(tmp_path, 130)
    config = reliability_config(tmp_path)
    log = tmp_path / "daemon.log"
    log.write_text("a previous run's cycle c1 succeeded\n")
    daemon = fork_server.spawn([str(config), "--daemon", "--interval-minutes", "0.001",
                                "--log-format", "text"], tmp_path, log)
    assert "previous run" not in log.read_text()  # the log starts empty
    wait_until(lambda: daemon.poll() is not None or "succeeded" in log.read_text(), 60.0,
               "a forked daemon's first cycle")
    assert daemon.poll() is None, log.read_text()
    with pytest.raises(subprocess.TimeoutExpired):
        daemon.wait(timeout=0.01)
    assert (tmp_path / "state" / "supervisor.json").exists()
    daemon.send_signal(signal.SIGKILL)
    assert daemon.wait(timeout=30) == -signal.SIGKILL
    assert daemon.returncode == -signal.SIGKILL
    daemon.send_signal(signal.SIGKILL)  # after the reap: a no-op, never another process
