"""#18 acceptance: a trading cycle on an account with 20,000 past fills costs what it costs on an
account without any (work counted as bytes read and written, never timed): the ledger holds a
bounded window, the rest is in ``state/paper/fills/``."""

from __future__ import annotations

from pathlib import Path

import msgspec
from _support.paper_support import Rig, round_trips, step_data

from aistock_actors.core.trading.history import RECENT_FILLS, fill_count
from aistock_actors.core.trading.ledger import LedgerState, reconcile
from aistock_actors.store.ledger import PaperStore

PAST_FILLS = 20_000


def _io() -> int:
    """Bytes this process read and wrote so far (``rchar + wchar``: every read/write call)."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["rchar"]) + int(fields["wchar"])


def _give_history(rig: Rig, n: int) -> None:
    """Rewrite the account as a ledger of the old format would hold it: ``n`` earlier fills
    inline, all of them folded into ``costs.json``."""
    store = PaperStore(rig.state_dir, None, 0.0)
    ledger = store.load_ledger()
    old = msgspec.structs.replace(ledger, fills=[*round_trips(n), *ledger.fills])
    assert reconcile(old) == []
    store.ledger_path.write_bytes(msgspec.json.encode(old))
    store.ledger_path.with_name("ledger.json.bak").unlink(missing_ok=True)
    costs = store.load_costs()
    store.save_costs(msgspec.structs.replace(costs, fills_recorded=costs.fills_recorded + n))


def _cycle_cost(tmp: Path, past_fills: int) -> tuple[int, LedgerState, int]:
    """Bytes read + written by a trading cycle (ingest, risk, trade) of a long-running daemon,
    the ledger after it, and the fills of its trade step."""
    rig = Rig(tmp, bars=150)
    rig.once()  # the first cycle marks the newest bar and plans
    if past_fills:
        _give_history(rig, past_fills)
    sup = rig.supervisor()  # the trader's start migrates the old ledger (once)
    try:
        rig.grow(151)
        rig.cycle(sup)  # the daemon runs on: its first steps read what a start reads
        rig.grow(152)
        before = _io()
        summary = rig.cycle(sup)
        cost = _io() - before
    finally:
        sup.stop()
    trade = step_data(summary, "trade")
    assert trade["step_status"] == "ok", trade
    return cost, rig.ledger(), int(trade["fills"])


def test_a_trade_cycle_with_20000_past_fills_costs_within_2x_of_an_empty_ledgers(
    tmp_path: Path,
) -> None:
    empty_cost, empty, empty_fills = _cycle_cost(tmp_path / "empty", 0)
    long_cost, long_lived, long_fills = _cycle_cost(tmp_path / "long", PAST_FILLS)
    assert fill_count(long_lived) == fill_count(empty) + PAST_FILLS
    assert long_fills == empty_fills > 0  # the same trades, history or not
    assert long_lived.cash == empty.cash and long_lived.positions == empty.positions
    assert len(long_lived.fills) <= 2 * RECENT_FILLS and reconcile(long_lived) == []
    print(f"\ncycle I/O: {empty_cost:,} bytes without past fills, {long_cost:,} with "
          f"{PAST_FILLS:,} ({long_cost / empty_cost:.2f}x)")
    assert long_cost <= 2 * empty_cost
