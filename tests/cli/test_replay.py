"""``--replay``: real actors, real files, real subprocesses, on planted-pattern data.

A replay of 4 symbols walks ~140 bars (the small lifecycle needs 123 bars of history; a
candidate every 20 bars), so every acceptance line of the issue is checked in seconds:

- no look-ahead: a replay over data cut at D equals the full replay up to D;
- determinism: the same data, config and seed give the same fills, verdicts and risk changes;
- SIGKILL at random moments (>= 20 kills): the replay finishes with the fills of an
  uninterrupted one, every state file loads, ``--audit-verify`` passes;
- the kill switch halts it (exit 3) with no fill after the halt; ``--unkill`` + ``--replay``
  ends with the account of a replay halted at the same bar; SIGTERM stops between steps;
- bad input: one line, a non-zero exit, nothing written.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _support.fault_harness import N_SYMBOLS, check_state, reliability_config, write_bars
from _support.forkserver import ForkServer
from _support.waiting import wait_until

from aistock_actors.cli.app import main
from aistock_actors.store.ledger import PaperStore

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")
BARS = 260
CADENCE = 20


def config_for(tmp: Path, bars: int = BARS, **sections: Any) -> Path:
    """Planted data and the small lifecycle; a challenger that matches the incumbent is promoted
    and the deflated-Sharpe stage is off, so a short replay promotes and trades repeatedly."""
    write_bars(tmp, bars)
    return reliability_config(tmp, training={"retrain_every_bars": CADENCE},
                              models={"keep_rejected": 2},
                              promotion={"champion_margin": 0.0, "min_deflated_sharpe": 0.0},
                              **sections)


def cli(config: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SUPERVISOR, str(config), *args],
                          cwd=config.parent, capture_output=True, text=True,
                          timeout=timeout, check=False)


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    log = open(config.parent / "replay.log", "a")  # noqa: SIM115 -- the child keeps its copy
    try:
        return subprocess.Popen([sys.executable, SUPERVISOR, str(config), "--replay", *args],
                                cwd=config.parent, stdout=log, stderr=subprocess.STDOUT,
                                text=True)
    finally:
        log.close()


def forked(server: ForkServer, config: Path, *args: str, timeout: float = 180) -> int:
    """``supervisor.py CONFIG ARGS``'s exit code, its main() forked from ``server`` (no
    interpreter start; output appended to ``replay.log``)."""
    proc = server.spawn([str(config), *args], config.parent, config.parent / "replay.log",
                        append=True)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)


def replay_state(tmp: Path) -> dict[str, Any]:
    try:
        return json.loads((tmp / "state" / "replay.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def steps_done(tmp: Path) -> int:
    return int(replay_state(tmp).get("steps_done", 0))


def _json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def outcome(tmp: Path) -> dict[str, list[Any]]:
    """Fills, verdicts and risk changes, each with the market date it belongs to."""
    state = tmp / "state"
    paper = PaperStore(state, None, 0.0)  # the whole fill log: archived (#18) and the window
    fills = paper.fills_since(0) if paper.ledger_path.exists() else []
    manifest = _json(state / "promotion" / "manifest.json", [])
    limits = _json(state / "risk" / "limits.json", {"history": []})
    return {
        "fills": [(f.timestamp[:10], f.order_id, f.symbol, f.quantity, f.price) for f in fills],
        "verdicts": [(_day(e["cycle_id"]), e["model_id"], e["status"], e["reasons"],
                      [(s["name"], s["value"]) for s in e["stages"]]) for e in manifest],
        "risk": [(_day(c["cycle_id"]), c["cycle_id"], c["before"], c["after"], c["reason"])
                 for c in limits["history"]],
    }


def _day(cycle_id: str) -> str:
    return f"{cycle_id[1:5]}-{cycle_id[5:7]}-{cycle_id[7:9]}"


def account(tmp: Path) -> dict[str, Any]:
    """The paper account without ids (model ids carry cycle numbers, which a halt shifts)."""
    ledger = _json(tmp / "state" / "paper" / "ledger.json", {})
    return {
        "cash": round(ledger["cash"], 6),
        "positions": {s: round(p["quantity"], 9) for s, p in ledger["positions"].items()},
        "fills": [(f["timestamp"], f["symbol"], round(f["quantity"], 9), round(f["price"], 9))
                  for f in ledger["fills"]],
        "equity": [(t, round(v, 6)) for t, v in ledger["equity_curve"]],
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted replay (in-process: the same code the CLI runs)."""
    tmp = tmp_path_factory.mktemp("reference")
    assert main([str(config_for(tmp)), "--replay"]) == 0
    state = replay_state(tmp)
    assert state["status"] == "complete" and state["steps_done"] == state["steps_total"] > 100
    return tmp


def test_replay_runs_the_whole_loop_and_reports_it(reference: Path, tmp_path: Path) -> None:
    state = replay_state(reference)
    summary = state["summary"]
    assert summary["candidates"] >= 5 and summary["promotions"], summary
    assert summary["account"]["trades"] > 0 and summary["benchmark"]["trades"] == N_SYMBOLS
    records = [json.loads(line) for line in
               (reference / "state" / "audit" / "log.jsonl").read_text().splitlines()]
    cycles = [r for r in records if r["action"] == "cycle_succeeded"]
    assert cycles and all(r["as_of"][:10] == _day(r["details"]["cycle_id"]) for r in cycles)
    alerts = list((reference / "state" / "alerts").rglob("*.json"))
    assert alerts and all(json.loads(p.read_text())["as_of"] for p in alerts)
    # keep_rejected 2: the folder holds the approved, the 2 newest rejected (pruned before a
    # training) and the one trained since
    kept = [p.name for p in (reference / "models").iterdir() if p.name != "active"]
    verdicts = {e["model_id"]: e["status"] for e in
                _json(reference / "state" / "promotion" / "manifest.json", [])}
    assert sum(1 for m in kept if verdicts.get(m) == "rejected") <= 3
    pruned = [r for r in records if r["action"] == "models_pruned"]
    assert pruned and all(len(r["details"]["removed"]) >= 1 for r in pruned)
    status = json.loads(cli(reference / "config.json", "--status", "--json").stdout)
    assert status["replay"]["status"] == "complete"
    assert status["replay"]["summary"]["promotions"] == summary["promotions"]
    again = cli(reference / "config.json", "--replay")  # finished: prints the summary again
    assert again.returncode == 0 and "COMPLETE" in again.stdout
    report = cli(reference / "config.json", "--report", "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "Replay" in html and summary["period_start"] in html


def test_determinism_same_data_same_fills_verdicts_and_risk(reference: Path,
                                                            tmp_path: Path) -> None:
    assert main([str(config_for(tmp_path)), "--replay"]) == 0
    assert outcome(tmp_path) == outcome(reference)


def test_no_look_ahead_a_cut_replay_equals_the_full_one_up_to_the_cut(
    reference: Path, tmp_path: Path
) -> None:
    cut = 225  # after the first promotion (its fills included)
    assert main([str(config_for(tmp_path, bars=cut)), "--replay"]) == 0
    last = replay_state(tmp_path)["done"][:10]
    full, part = outcome(reference), outcome(tmp_path)
    for key in ("fills", "verdicts", "risk"):
        expected = [item for item in full[key] if item[0] <= last]
        assert part[key] == expected, key
    assert part["fills"] and part["verdicts"]


@pytest.mark.slow
def test_sigkill_at_random_moments_resumes_to_the_same_fills(
    reference: Path, tmp_path: Path, fork_server: ForkServer
) -> None:
    config = config_for(tmp_path)
    rng = random.Random(11)
    kills, mid_replay = 0, 0
    while kills < 20:
        before = steps_done(tmp_path)
        at_start = rng.random() < 0.25
        # A kill during start-up runs supervisor.py as a new process (interpreter start
        # included); a kill mid-replay forks the same main() from fork_server, which imported
        # it once (a real process all the same, SIGKILLed), saving the interpreter start.
        proc = start(config) if at_start else fork_server.spawn(
            [str(config), "--replay"], tmp_path, tmp_path / "replay.log", append=True)
        try:
            if at_start:  # interpreter start, lock, actor start, first step
                time.sleep(rng.uniform(0.0, 1.5))
            else:
                # Spread the kills over the replay: 1-5 more steps, then a moment inside the
                # next one (a step without training takes ~30-50 ms now), so the 20 kills land
                # well before the ~134-step replay ends even on a quiet machine.
                goal = before + rng.randint(1, 5)
                wait_until(lambda g=goal, p=proc: steps_done(tmp_path) >= g
                           or p.poll() is not None, 120, "steps", log=tmp_path / "replay.log")
                time.sleep(rng.uniform(0.0, 0.06))
                mid_replay += 1
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        if proc.returncode == 0:
            break  # finished before this kill
        kills += 1
        report = check_state(tmp_path)
        assert [p for p in report.problems if "out of step" not in p] == [], report.problems
    assert kills >= 20 and mid_replay >= 10, (kills, mid_replay)
    final = cli(config, "--replay")
    assert final.returncode == 0, final.stderr[-3000:]
    assert replay_state(tmp_path)["status"] == "complete"
    assert check_state(tmp_path).problems == []
    assert outcome(tmp_path)["fills"] == outcome(reference)["fills"]
    verify = cli(config, "--audit-verify")
    assert verify.returncode == 0 and "hash chain intact" in verify.stdout


def _audit_actions(tmp: Path) -> list[str]:
    lines = (tmp / "state" / "audit" / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["action"] for line in lines]


@pytest.mark.slow
def test_kill_switch_halts_a_replay_and_unkill_continues_it(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    # The first replay runs supervisor.py as a new process; the later long runs fork the same
    # main() from fork_server (real processes, real signals), saving interpreter starts.
    halted = tmp_path / "halted"
    halted.mkdir()
    config = config_for(halted)
    proc = start(config)
    try:  # the step after 5 x CADENCE trains (a model trades by then): the switch lands in it
        wait_until(lambda: steps_done(halted) >= 5 * CADENCE or proc.poll() is not None, 180,
                   "five cadences of steps", log=halted / "replay.log")
        (halted / "state" / "KILL_SWITCH").touch()
        assert proc.wait(timeout=60) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (halted / "replay.log").read_text()
    assert "replay HALTED at" in log and "kill_switch_activated" in log
    actions = _audit_actions(halted)
    after = actions[actions.index("kill_switch_activated"):]
    assert "paper_orders_executed" not in after  # no fill after the halt
    assert replay_state(halted)["status"] == "halted"
    fills_at_halt = account(halted)["fills"]
    as_of = json.loads((halted / "state" / "paper" / "ledger.json").read_text())["as_of"]

    assert cli(config, "--unkill").returncode == 0
    assert account(halted)["fills"] == fills_at_halt
    proc = fork_server.spawn([str(config), "--replay"], halted, halted / "replay.log",
                             append=True)  # SIGTERM stops it cleanly between steps ...
    try:
        resumed_at = steps_done(halted)
        wait_until(lambda: steps_done(halted) >= resumed_at + 5 or proc.poll() is not None, 120,
                   "five more steps", log=halted / "replay.log")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "replay stopped after" in (halted / "replay.log").read_text()
    assert replay_state(halted)["status"] == "stopped"
    assert forked(fork_server, config, "--replay") == 0  # ... and it continues to the end
    assert replay_state(halted)["status"] == "complete"

    # The same halt at the same bar, reached without interruption: replay to the halt's bar,
    # set the switch, start (halts at once), --unkill, replay to the end.
    same = tmp_path / "same"
    same.mkdir()
    other = config_for(same)
    assert forked(fork_server, other, "--replay", "--to", as_of) == 0
    (same / "state" / "KILL_SWITCH").touch()
    assert forked(fork_server, other, "--replay") == 3
    assert cli(other, "--unkill").returncode == 0
    assert forked(fork_server, other, "--replay") == 0
    assert account(halted) == account(same)
    assert cli(config, "--audit-verify").returncode == 0


# --- bad input: one clear line, a non-zero exit, nothing written --------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(done: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr, lines


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--from", "2015-06-01", "--to", "2015-03-01"),
         "--from 2015-06-01 is after --to 2015-03-01"),
        (("--from", "1999-01-01"), "--from 1999-01-01 is before the first bar"),
        (("--to", "2030-01-01"), "--to 2030-01-01 is after the last bar"),
        (("--from", "2015-13-45"), "not an ISO date"),
    ],
)
def test_bad_dates_are_refused_in_one_line(tmp_path: Path, args: tuple[str, ...],
                                           words: str) -> None:
    config = config_for(tmp_path, bars=150)
    before = _tree(tmp_path)
    _refused(cli(config, "--replay", *args), 2, words)
    assert _tree(tmp_path) == before and not (tmp_path / "state").exists()


def test_empty_csv_folder_and_history_of_a_daemon_are_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path, bars=150)
    empty = tmp_path / "data"
    shutil.rmtree(empty)
    empty.mkdir()
    _refused(cli(config, "--replay"), 2, "contains no *.csv file")
    assert not (tmp_path / "state").exists()
    write_bars(tmp_path, 150)
    assert cli(config, "--run-once").returncode == 0  # a live cycle's history
    before = _tree(tmp_path)
    _refused(cli(config, "--replay"), 2, "holds history that is not a replay's")
    assert _tree(tmp_path) == before
    _refused(cli(config, "--run-once", "--to", "2015-03-01"), 2, "--from and --to go with")


def test_a_replay_into_a_live_daemons_state_dir_is_refused(tmp_path: Path) -> None:
    config = config_for(tmp_path, bars=150)
    log = open(tmp_path / "daemon.log", "w")  # noqa: SIM115
    daemon = subprocess.Popen([sys.executable, SUPERVISOR, str(config), "--daemon",
                               "--interval-minutes", "60"], cwd=tmp_path, stdout=log,
                              stderr=subprocess.STDOUT)
    log.close()
    try:
        lock = tmp_path / "state" / "daemon.lock"
        wait_until(lambda: lock.exists() and b"daemon" in lock.read_bytes(), 60, "the daemon")
        done = cli(config, "--replay")
        _refused(done, 4, "in use by a running autopilot process")
        assert not (tmp_path / "state" / "replay.json").exists()
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)


def test_a_terminal_shows_a_progress_bar_and_a_pipe_only_the_summary(tmp_path: Path) -> None:
    from _support.operator_support import run_in_pty

    config = config_for(tmp_path, bars=150)
    code, out = run_in_pty([sys.executable, SUPERVISOR, str(config), "--replay", "--to",
                            "2015-07-24"], cwd=tmp_path)
    assert code == 0, out
    assert "━" in out and "\x1b[" in out  # rich's bar, drawn while it runs
    assert "equity $100,000" in out and "model none" in out and "2015-07-" in out
    assert "COMPLETE" in out.split("━")[-1]  # the summary comes after the bar
    piped = cli(config, "--replay")  # continued to the end, in a pipe
    assert piped.returncode == 0 and "COMPLETE" in piped.stdout
    for output in (piped.stdout, piped.stderr):
        assert "━" not in output and "\x1b[" not in output
