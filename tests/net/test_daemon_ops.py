"""A real daemon subprocess with every operations feature pointed at a local server:
remote kill switch, health reports, webhooks, /healthz and /metrics."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from _support.localhttp import Answer, LocalServer, Recorded
from _support.opsupport import FAST_MONITORING, compare_metrics_with_status, http_get
from _support.support import write_config
from _support.waiting import wait_until

from aistock_actors.core.data.sample_data import generate_universe, write_universe_csvs
from aistock_actors.core.supervision.health import HEALTH_REPORT_FIELDS

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")
INTERVAL = 1.0


def cli(config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SUPERVISOR, str(config), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def cycles_total(state_dir: Path) -> int:
    try:
        return int(json.loads((state_dir / "supervisor.json").read_text())["cycles_total"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_daemon_halts_on_the_remote_switch_and_serves_health_and_metrics(
    tmp_path: Path, local_server: Callable[..., LocalServer]
) -> None:
    remote = {"kill_switch": False}

    def respond(request: Recorded) -> Answer:
        if request.path == "/kill_switch":
            return Answer(200, dict(remote))
        return Answer(200, {"ok": True})

    server = local_server(respond)
    write_universe_csvs(tmp_path / "data", generate_universe(3, 80, seed=5))
    config = write_config(
        tmp_path,
        headless={
            "kill_switch_check_url": server.url("/kill_switch"),
            "kill_switch_check_interval_seconds": INTERVAL,
            "kill_switch_check_timeout_seconds": 0.5,
            "external_health_report_url": server.url("/health"),
            "health_report_interval_seconds": INTERVAL,
        },
        supervision={
            "kill_switch_poll_seconds": 0.1,
            "notification_webhooks": {"generic": server.url("/hook")},
        },
        monitoring={**FAST_MONITORING, "listen_port": 0},
    )
    state_dir = tmp_path / "state"
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, SUPERVISOR, str(config), "--daemon", "--interval-minutes", "0.01",
             "--log-format", "json"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "monitoring server on" in log_path.read_text(), 60, "the server")
        port = re.search(r"monitoring server on http://127\.0\.0\.1:(\d+)", log_path.read_text())
        assert port is not None
        base = f"http://127.0.0.1:{port.group(1)}"
        wait_until(lambda: cycles_total(state_dir) >= 1, 60, "the first cycle")
        reports = server.wait_for(lambda rs: any(r.path == "/health" for r in rs), 10)
        report = next(r.json for r in reports if r.path == "/health")
        assert set(HEALTH_REPORT_FIELDS) <= set(report)
        assert http_get(base + "/healthz")[0] == 200

        remote["kill_switch"] = True
        took = wait_until(lambda: (state_dir / "HALTED").exists(), INTERVAL + 5, "the halt")
        assert took <= INTERVAL + 1.0, took
        halt = json.loads((state_dir / "HALTED").read_text())
        assert halt["kind"] == "kill_switch" and halt["details"]["source"] == "remote"
        wait_until(lambda: http_get(base + "/healthz")[0] == 503, 5, "/healthz 503")
        # Halted: no cycle starts any more, so /metrics and --status describe the same state.
        wait_until(lambda: not json.loads(http_get(base + "/healthz")[1])["cycle_running"], 10,
                   "the running cycle to be abandoned")
        metrics = http_get(base + "/metrics")[1].decode()
        status = cli(config, "--status", "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        hooks = server.wait_for(
            lambda rs: any(r.path == "/hook" and r.json["code"] == "kill_switch_activated"
                           for r in rs), 10)
        assert any(r.json["severity"] == "critical" for r in hooks if r.path == "/hook")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    compare_metrics_with_status(metrics, json.loads(status.stdout))
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text
