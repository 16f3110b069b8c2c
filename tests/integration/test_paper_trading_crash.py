"""A real daemon killed with SIGKILL in the middle of its cycles, again and again.

Each round appends a new bar to every CSV (so the next cycle has something to trade; in some
rounds half the symbols get it a cycle before the others, as a per-symbol feed delivers), starts
``supervisor.py CONFIG --daemon --interval-minutes 0.01``, waits until a cycle has started, and
kills the process a random few milliseconds later: inside ingestion, the risk step, the fills,
or the ledger write. After every kill the persisted paper account must load and be exactly what
its own fill log says (``reconcile``), no order id may be applied twice, and every fill must be at
the open of the bar after the one its order was planned on.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _support.forkserver import ForkedDaemon, ForkServer
from _support.paper_support import activate_model, head, trained_model, universe
from _support.support import write_config

from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.core.data.sample_data import write_universe_csvs
from aistock_actors.core.trading.ledger import Fill, LedgerState, new_ledger, reconcile
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.risk import load_risk_state
from aistock_actors.store.state_file import load_state

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = str(REPO / "supervisor.py")
MID_CYCLE_KILLS = 20
MAX_ROUNDS = 45
FIRST_BARS = 200


def start(tmp: Path, config: Path, log: Path,
          server: ForkServer | None = None) -> subprocess.Popen[str] | ForkedDaemon:
    """``supervisor.py CONFIG --daemon`` as a new process, or forked from ``server`` (the same
    ``main``, without an interpreter start per round)."""
    argv = [str(config), "--daemon", "--interval-minutes", "0.01", "--log-format", "text"]
    if server is not None:
        return server.spawn(argv, tmp, log)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, SUPERVISOR, *argv], cwd=tmp, stdout=out,
                                stderr=subprocess.STDOUT, text=True)


def cycle_lines(log: Path, suffix: str) -> int:
    return sum(1 for line in log.read_text().splitlines()
               if "cycle c" in line and line.rstrip().endswith(suffix))


def wait_for(proc: subprocess.Popen[str] | ForkedDaemon, log: Path, suffix: str,
             count: int) -> None:
    """Poll the daemon's log until ``count`` cycles logged ``suffix`` (bounded in time)."""
    for _ in range(6000):
        if cycle_lines(log, suffix) >= count:
            return
        try:
            proc.wait(timeout=0.01)  # returns early only if the daemon died on its own
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"daemon exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
    raise AssertionError(f"no cycle {count} {suffix} in time:\n{log.read_text()[-3000:]}")


Prices = dict[str, dict[str, tuple[float, float]]]
"""``{symbol: {bar timestamp: (open, close of the bar before)}}``."""


def staggered(frames: dict[str, pd.DataFrame], shown: int) -> dict[str, pd.DataFrame]:
    """The first half of the symbols up to bar ``shown``, the others one bar behind (a feed
    whose bars arrive per symbol)."""
    names = sorted(frames)
    return {s: frames[s].iloc[: shown if i < len(names) // 2 else shown - 1]
            for i, s in enumerate(names)}


def killed_mid_cycle(log: Path) -> bool:
    """Whether the last cycle the daemon logged had started but not finished."""
    lines = [line for line in log.read_text().splitlines() if "cycle c" in line]
    return bool(lines) and lines[-1].rstrip().endswith("started")


def check_fill_prices(fills: list[Fill], prices: Prices) -> None:
    """Every fill is at the open of its bar. An order fills at the bar right after its decision
    bar (its symbol's: the test rewrites the CSVs one by one while the daemon ingests, so a bar can
    arrive a cycle late), so its decision price is the close of the bar before the fill bar. A
    remainder carried past the volume cap (``<root>.c<n>``, ``paper.remainder_policy = "carry"``)
    keeps its root's decision price and fills at a later bar than the chain's previous fill."""
    chains: dict[str, Fill] = {}
    for fill in fills:
        open_, close_before = prices[fill.symbol][fill.timestamp]
        root = fill.order_id.partition(".c")[0]
        previous = chains.get(root)
        if fill.order_id == root:
            assert (fill.reference_price, fill.decision_price) == (open_, close_before), fill
        else:
            assert previous is not None and previous.timestamp < fill.timestamp, fill
            assert fill.reference_price == open_, fill
            assert fill.decision_price == previous.decision_price, fill
        chains[root] = fill


def check_ledger(state_dir: Path, prices: Prices) -> LedgerState:
    alerts = AlertSink(state_dir / "alerts")
    state = load_state(state_dir / "paper" / "ledger.json", LedgerState,
                       lambda: new_ledger(100_000.0), alerts)
    assert reconcile(state) == []
    assert len(set(state.applied_order_ids)) == len(state.applied_order_ids)
    assert len({f.order_id for f in state.fills}) == len(state.fills)
    check_fill_prices(state.fills, prices)
    assert load_risk_state(state_dir, alerts) is not None or not (state_dir / "risk").exists()
    return state


@pytest.mark.slow
def test_sigkill_mid_cycle_never_loses_or_doubles_a_fill(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    frames = universe(8, 300, seed=3)
    prices: Prices = {
        s: {format_timestamp(int(t.value)): (float(o), float(c))
            for t, o, c in zip(f.index[1:], f["open"].iloc[1:], f["close"].iloc[:-1], strict=True)}
        for s, f in frames.items()}
    write_universe_csvs(tmp_path / "data", head(frames, FIRST_BARS))
    activate_model(tmp_path / "models", trained_model(head(frames, FIRST_BARS)))
    config = write_config(tmp_path, supervision={"kill_switch_poll_seconds": 0.05},
                          risk={"max_portfolio_drawdown_halt": 1.0})
    state_dir = tmp_path / "state"
    rng = random.Random(11)
    shown = FIRST_BARS
    as_of_seen: set[str] = set()
    mid_cycle = rounds = 0
    # The first round starts supervisor.py as a new process; the others fork the same main()
    # from a server that imported it once (each a real process, SIGKILLed), saving ~2-5 s each.
    while mid_cycle < MID_CYCLE_KILLS:
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"only {mid_cycle} kills landed inside a cycle"
        shown += 1  # a new bar: the first cycle after the restart ingests it and trades
        write_universe_csvs(tmp_path / "data", head(frames, shown))
        log = tmp_path / f"daemon{rounds}.log"
        proc = start(tmp_path, config, log, fork_server if rounds > 1 else None)
        try:
            if rng.random() < 0.8:  # usually let one trading cycle finish, then add a bar
                wait_for(proc, log, "succeeded", 1)
                shown += 1
                if rng.random() < 0.3:  # half the symbols' bars first: the rest come late
                    write_universe_csvs(tmp_path / "data", staggered(frames, shown))
                    wait_for(proc, log, "succeeded", cycle_lines(log, "succeeded") + 1)
                write_universe_csvs(tmp_path / "data", head(frames, shown))
            wait_for(proc, log, "started", cycle_lines(log, "started") + 1)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.0, 0.08))  # a trading cycle takes ~0.1 s
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        mid_cycle += killed_mid_cycle(log)
        state = check_ledger(state_dir, prices)
        as_of_seen.add(state.as_of)
    final = subprocess.run([sys.executable, SUPERVISOR, str(config), "--run-once"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert final.returncode == 0, final.stdout + final.stderr
    state = check_ledger(state_dir, prices)
    assert state.fills, "no cycle ever got to trade"
    assert state.as_of == format_timestamp(int(frames["SYM000"].index[shown - 1].value))
    assert len(as_of_seen) > 3  # trading really progressed between the kills
    assert not list((state_dir / "alerts" / "critical").glob("*unrecoverable*"))
    status = subprocess.run([sys.executable, SUPERVISOR, str(config), "--status"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert "paper equity:" in status.stdout and "ceiling 0.3" in status.stdout, status.stdout
    summary = json.loads((state_dir / "supervisor.json").read_text())
    assert summary["last_cycle"]["outcome"] == "succeeded"
