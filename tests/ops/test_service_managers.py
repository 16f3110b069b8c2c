"""The service files under ops/ work with the real service managers.

* systemd: ``systemd-analyze verify`` on ``ops/systemd/aistock.service`` (a copy whose
  ``ExecStart`` interpreter is this venv's, since ``/opt/aistock`` does not exist here). systemd
  is not PID 1 in a container or CI, so the runbook's ``systemctl`` / ``journalctl`` commands
  themselves cannot run (``tests/test_docs.py`` says so).
* supervisord: a real ``supervisord`` runs a copy of ``ops/supervisord/aistock.conf`` (paths
  pointed at a temp workspace, ``user=`` dropped: no ``aistock`` user here; ``startsecs`` 10 -> 1
  to keep the test short), and the runbook's ``supervisorctl`` commands run verbatim from the
  directory holding ``supervisord.conf`` (where supervisorctl looks for it): ``status``,
  ``stop`` (the daemon exits 0 on SIGTERM) and ``start``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.docs_support import documented
from _support.support import write_config
from _support.waiting import wait_until

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def substituted(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert re.search(old, text, flags=re.M), f"{old!r} is no longer in the file"
        text = re.sub(old, new, text, flags=re.M)
    return text


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "aistock.service"
    unit.write_text(substituted((REPO / "ops" / "systemd" / "aistock.service").read_text(),
                                {r"/opt/aistock/\.venv/bin/python": sys.executable}))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    ours = [line for line in (done.stdout + done.stderr).splitlines() if "aistock" in line]
    assert done.returncode == 0 and not ours, f"{done.stdout}\n{done.stderr}"



def _cycles(state: Path) -> int:
    try:
        return int(json.loads((state / "supervisor.json").read_text())["cycles_total"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.fixture()
def supervisord_dir(tmp_path: Path) -> Iterator[Path]:
    """A short directory (the control socket's path must fit in 108 bytes)."""
    short = Path(tempfile.mkdtemp(prefix="sv-"))
    yield short
    shutil.rmtree(short, ignore_errors=True)


def test_supervisord_program_runs_and_the_runbook_commands_work(
        tmp_path: Path, supervisord_dir: Path) -> None:
    supervisord = shutil.which("supervisord", path=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    if supervisord is None:
        pytest.skip("supervisor is not installed (it is in the dev extra)")
    commands = sorted(c for c in documented(REPO) if c.startswith("supervisorctl "))
    by_verb = {c.split()[1]: c for c in commands}
    assert set(by_verb) == {"start", "stop", "status"}, commands

    write_universe_csvs(tmp_path / "data", generate_universe(4, 120, seed=3))
    config = write_config(tmp_path, daemon={"interval_minutes": 60})
    (tmp_path / "supervisor.py").symlink_to(REPO / "supervisor.py")
    here = supervisord_dir
    (here / "conf.d").mkdir()
    program = substituted((REPO / "ops" / "supervisord" / "aistock.conf").read_text(), {
        r"/opt/aistock/\.venv/bin/python": sys.executable,
        r"/etc/aistock/config\.json": str(config),
        r"^directory=/opt/aistock$": f"directory={tmp_path}",
        r"^user=aistock\n": "",
        r"^startsecs=10$": "startsecs=1",
        r"/var/log/aistock/": f"{tmp_path}/",
    })
    (here / "conf.d" / "aistock.conf").write_text(program)
    (here / "supervisord.conf").write_text(f"""\
[unix_http_server]
file={here}/s.sock

[supervisord]
logfile={here}/supervisord.log
pidfile={here}/supervisord.pid
childlogdir={here}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{here}/s.sock

[include]
files = conf.d/*.conf
""")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}

    def ctl(command: str) -> subprocess.CompletedProcess[str]:
        """A runbook command, verbatim, from the directory holding supervisord.conf."""
        return subprocess.run(["bash", "-c", command], cwd=here, env=env, capture_output=True,
                              text=True, timeout=90, check=False)

    def log() -> str:
        return "\n".join(p.read_text()[-2000:] for p in (here / "supervisord.log",
                                                        tmp_path / "daemon.log") if p.exists())

    server = subprocess.Popen([supervisord, "-n", "-c", str(here / "supervisord.conf")],
                              cwd=here, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: "RUNNING" in ctl(by_verb["status"]).stdout, 30, "aistock RUNNING")
        wait_until(lambda: _cycles(tmp_path / "state") >= 1, 90, "the daemon's first cycle")
        status = ctl(by_verb["status"])
        assert status.returncode == 0 and "RUNNING" in status.stdout, status

        stop = ctl(by_verb["stop"])
        assert stop.returncode == 0 and "aistock: stopped" in stop.stdout, (stop, log())
        assert "stopped: aistock (exit status 0)" in log(), log()
        assert "STOPPED" in ctl(by_verb["status"]).stdout

        start = ctl(by_verb["start"])
        assert start.returncode == 0 and "aistock: started" in start.stdout, (start, log())
        status = ctl(by_verb["status"])
        assert status.returncode == 0 and "RUNNING" in status.stdout, (status, log())
        # supervisord says RUNNING after startsecs (1 s); the daemon handles SIGTERM from when it
        # logs "daemon started" (imports take longer on a busy machine): stop it after that.
        wait_until(lambda: (tmp_path / "daemon.log").read_text().count("daemon started") >= 2,
                   90, "the restarted daemon's signal handlers")
    finally:
        server.terminate()  # supervisord stops its program (SIGTERM) and exits
        try:
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    assert log().count("(exit status 0)") == 2, log()
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()
