"""Child process writing paper ledgers one fill at a time (run as a script, never imported by
pytest): the writer side of the bounded-history SIGKILL loop (#18).

Usage: ``python ledger_writer.py STATE_DIR``

Opens the ledger as the PaperTrader does (``PaperStore.open_ledger``: recovery, journal sync),
then forever adds fill ``f<k>`` (k = the account's fill count: buy 2, sell 1 of ``AAA``) and
:data:`POINTS_PER_SAVE` equity points (point ``i`` is :func:`point`, as a daemon catching up on
missed bars marks them; model ``m`` tracked from the first save, the drawdown re-based at every
97th fill) and saves the ledger, which moves the fills and points beyond their windows to
``state/paper/fills/`` and ``state/paper/equity/``. After each save returns, ``k`` is printed on
its own line and stdout is flushed: a printed number is an acknowledged fill. Syncing is off, as
in a replay: a SIGKILL loses nothing the kernel holds.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path

import msgspec

from aistock_actors.core.trading.curve import rebase_drawdown, track_model
from aistock_actors.core.trading.execution import next_position
from aistock_actors.core.trading.history import fill_count
from aistock_actors.core.trading.ledger import Fill, LedgerState
from aistock_actors.store.atomic import sync_to_disk
from aistock_actors.store.ledger import PaperStore

POINTS_PER_SAVE = 60


def point(i: int) -> tuple[str, float]:
    """Equity point ``i`` of the account's life."""
    day = dt.date(2000, 1, 1) + dt.timedelta(days=i)
    return day.isoformat(), 100_000.0 + 1_000.0 * math.sin(i / 7.0) + i / 10.0


def with_points(state: LedgerState, k: int) -> LedgerState:
    """``state`` with the next :data:`POINTS_PER_SAVE` points, model ``m``, re-based at times."""
    first = state.curve_archived + len(state.equity_curve)
    marked = msgspec.structs.replace(state, equity_curve=[
        *state.equity_curve, *(point(i) for i in range(first, first + POINTS_PER_SAVE))])
    marked = track_model(marked, "m")
    return rebase_drawdown(marked) if k % 97 == 50 else marked


def with_fill(state: LedgerState, k: int) -> LedgerState:
    """``state`` after fill ``f<k>`` (consistent: the ledger reconciles)."""
    qty = 2.0 if k % 2 == 0 else -1.0
    price = 10.0 + (k % 7) * 0.1
    pos = state.positions.get("AAA")
    position, realised, closed = next_position(pos, "AAA", qty, price, price, f"t{k}")
    fill = Fill(order_id=f"f{k}", symbol="AAA", quantity=qty, price=price, reference_price=price,
                decision_price=price, commission=0.01, realised_pnl=realised,
                closed_quantity=closed, predicted_cost_bps=1.0, realised_cost_bps=1.0,
                timestamp=f"2024-{k // 500 % 12 + 1:02d}-01", position_after=qty,
                equity_after=0.0)
    positions = dict(state.positions)
    if position is None:
        positions.pop("AAA", None)
    else:
        positions["AAA"] = position
    return msgspec.structs.replace(
        state, cash=state.cash - qty * price - 0.01, realised_pnl=state.realised_pnl + realised,
        commissions_paid=state.commissions_paid + 0.01, positions=positions,
        fills=[*state.fills, fill], applied_order_ids=[fill.order_id])


def main() -> None:
    sync_to_disk(False)
    store = PaperStore(Path(sys.argv[1]), None, 100_000.0, keep_closing_fills=5)
    state = store.open_ledger()
    out = sys.stdout
    while True:
        k = fill_count(state)
        state = store.save_ledger(with_points(with_fill(state, k), k))
        out.write(f"{k}\n")
        out.flush()


if __name__ == "__main__":
    main()
