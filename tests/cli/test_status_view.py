"""``--status``: rich view on a terminal, plain greppable lines in a pipe, JSON for scripts."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support.lifecycle_support import run_cycle
from _support.operator_support import operator_state, run_in_pty
from _support.support import write_config

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.cli import status_view
from aistock_actors.config import load_config
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.model import BacktestCompleted, BacktestModel
from aistock_actors.runtime.supervisor import ChildSpec
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.state import HaltState, write_halt

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")
ANSI = "\x1b["


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return operator_state(tmp_path_factory.getbasetemp(), tmp_path_factory.mktemp("status"))


def status_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SUPERVISOR, str(config), "--status", *args],
                          cwd=config.parent, capture_output=True, text=True, timeout=120,
                          check=False)


def test_piped_status_is_plain_text_with_the_greppable_lines(config: Path) -> None:
    done = status_cli(config)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ANSI not in out and "╭" not in out
    for line in ("halted:               no", "kill switch:          off",
                 "consecutive failures: 0 / 3",
                 "not built yet:        train, backtest, judge",  # trading-only cycles
                 "recent alerts:        newest 2 critical/error", "paper equity:",
                 "ceiling 0.3", "active model:         m-"):
        assert line in out, line
    lines = out.splitlines()
    first = lines.index("recent alerts:        newest 2 critical/error")
    assert "critical kill_switch_activated (supervisor)" in lines[first + 1]  # newest first
    assert "error    csv_rejected (data_ingestor)" in lines[first + 2]
    assert "BROKEN.csv: row 2" in lines[first + 2]


def test_status_json_keeps_its_keys_and_adds_recent_alerts(config: Path) -> None:
    data = json.loads(status_cli(config, "--json").stdout)
    for key in ("mode", "halted", "halt", "kill_switch", "consecutive_failures",
                "max_consecutive_failures", "cycles_total", "last_cycle", "restarts", "alerts",
                "not_built", "active_model", "pending_approvals", "paper", "risk"):
        assert key in data, key
    alerts = data["recent_alerts"]
    assert [a["code"] for a in alerts] == ["kill_switch_activated", "csv_rejected"]
    assert alerts[0]["severity"] == "critical" and Path(alerts[0]["file"]).is_file()
    assert data["alerts"]["critical"] == 1 and data["alerts"]["error"] == 1


def test_status_on_a_terminal_is_the_rich_view(config: Path) -> None:
    code, out = run_in_pty([sys.executable, SUPERVISOR, str(config), "--status"],
                           cwd=config.parent)
    assert code == 0, out
    assert ANSI in out and "╭" in out  # colours and panels
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    for title in ("aistock", "last cycle", "model", "paper account", "risk limits",
                  "recent alerts"):
        assert f"─ {title}" in out, title
    for text in ("running", "kill_switch_activated", "csv_rejected", "use of ceiling",
                 "before a halt", "trade"):
        assert text in out, text


def test_rich_view_of_a_halted_system_escapes_markup(tmp_path_factory: pytest.TempPathFactory,
                                                     tmp_path: Path) -> None:
    config = operator_state(tmp_path_factory.getbasetemp(), tmp_path)
    loaded = load_config(config)
    operator.kill(loaded)
    write_halt(loaded.state_dir, HaltState(
        kind="kill_switch", reason="kill_switch_activated", halted_at="2026-01-13T12:00:00Z",
        message="kill switch [bold]activated[/bold] (file)", details={"source": "file"}))
    st = operator.status(loaded)
    buffer = io.StringIO()
    from rich.console import Console

    Console(file=buffer, force_terminal=True, width=140, color_system="truecolor").print(
        status_view.build_view(st))
    out = buffer.getvalue()
    assert "HALTED" in out and "ACTIVE" in out
    assert "[bold]activated[/bold]" in out  # shown as written, not interpreted as markup
    plain = io.StringIO()
    status_view.print_status(st, plain)  # not a terminal: the plain lines
    assert plain.getvalue() == operator.render_status(st) + "\n"
    assert "HALTED:               kill_switch_activated" in plain.getvalue()
    assert "kill switch:          ACTIVE" in plain.getvalue()


def test_fresh_install_renders_in_both_views(tmp_path: Path) -> None:
    st = operator.status(load_config(write_config(tmp_path)))
    buffer = io.StringIO()
    from rich.console import Console

    Console(file=buffer, force_terminal=True, width=120).print(status_view.build_view(st))
    out = buffer.getvalue()
    assert "no cycle has run yet" in out and "none yet (no trade step has run)" in out
    assert "no open critical or error alert" in out
    text = operator.render_status(st)
    assert "recent alerts:        none" in text and "halted:               no" in text


class CurveBacktester(SupervisedActor):
    """Performs the backtest step with a reply carrying a 250-point equity curve."""

    child_name = "backtester"

    def handle(self, request: Request) -> Reply:
        curve = [(f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00", 1e5 + i) for i in range(250)]
        return BacktestCompleted(
            request_id=request.request_id, model_id="m-1", sharpe=1.25, max_drawdown=0.1,
            win_rate=0.5, total_return=0.1, trade_count=10, transition_drawdown=0.0,
            return_over_drawdown=1.0, exposure=0.5, turnover=1.0, total_costs=1.0, bars=300,
            folds=4, oos_start=curve[0][0], oos_end=curve[-1][0], equity_curve=curve)


def test_a_backtests_equity_curve_stays_out_of_supervisor_json_and_status_json(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    spec = ChildSpec(name="backtester", actor_class=CurveBacktester, step="backtest",
                     make_request=lambda rid, _cycle: BacktestModel(request_id=rid,
                                                                    candidate=None))
    summary, _ = run_cycle(config, [spec])
    backtest = next(s for s in summary.steps if s.name == "backtest")
    assert backtest.status == "ok" and backtest.data["sharpe"] == 1.25
    assert "equity_curve" not in backtest.data
    saved = (tmp_path / "state" / "supervisor.json").read_text()
    assert '"sharpe": 1.25' in saved and "equity_curve" not in saved
    done = status_cli(config, "--json")
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["last_cycle"]["steps"]
    data = next(s for s in steps if s["name"] == "backtest")["data"]
    assert data["model_id"] == "m-1" and "equity_curve" not in data
