"""The ledger's bounded fill window (#18), pure: which fills move out to the archive, and the
account they leave behind (:class:`~aistock_actors.core.trading.orders.HistoryBase`).

The ledger keeps the newest :data:`RECENT_FILLS` fills. Once more than :data:`ARCHIVE_BATCH`
fills are older than that, they move out together, so a trade step's write does not grow with
the account's age and moving costs O(1) per fill on average. The net P&L of the newest
``keep_closing`` closing fills moved out stays in ``history_base.closing_pnl`` (the adaptive risk
rules' win rate reads the last ``risk.performance_window`` closing fills).
``fills_archived`` numbers the fills (fill ``k`` of the account's life is ``fills[k -
fills_archived]`` while kept), and ``history_base`` is the account right after the moved fills,
from which :func:`~aistock_actors.core.trading.ledger.reconcile` replays the kept ones.
"""

from __future__ import annotations

import msgspec

from aistock_actors.core.trading.execution import replay_fills
from aistock_actors.core.trading.orders import Fill, HistoryBase, LedgerState

RECENT_FILLS = 20
"""Fills the ledger always keeps (the newest)."""
ARCHIVE_BATCH = 20
"""Fills beyond the window that move out together."""


def split_history(
    state: LedgerState,
    keep_closing: int = 0,
    *,
    recent: int = RECENT_FILLS,
    batch: int = ARCHIVE_BATCH,
) -> tuple[LedgerState, list[Fill]]:
    """``(kept, moved)``: ``moved`` is empty until more than ``batch`` fills are older than the
    newest ``recent``, then it holds every one of them, oldest first, and ``kept`` starts at the
    window with ``fills_archived`` and ``history_base`` moved on past them."""
    cut = len(state.fills) - recent
    if cut <= batch:
        return state, []
    moved = list(state.fills[:cut])
    book, _ = replay_fills(state.initial_cash, moved, state.history_base)
    earlier = state.history_base.closing_pnl if state.history_base is not None else []
    closing = [*earlier, *closing_pnl(moved)]
    base = HistoryBase(
        cash=book.cash,
        realised_pnl=book.realised,
        commissions_paid=book.commissions,
        positions=dict(sorted(book.positions.items())),
        closing_pnl=closing[max(len(closing) - keep_closing, 0) :] if keep_closing > 0 else [],
    )
    kept = msgspec.structs.replace(
        state,
        fills=list(state.fills[cut:]),
        fills_archived=state.fills_archived + cut,
        history_base=base,
    )
    return kept, moved


def closing_pnl(fills: list[Fill]) -> list[float]:
    """Net P&L (realised minus commission) of the closing fills among ``fills``, in order."""
    return [f.realised_pnl - f.commission for f in fills if f.closed_quantity > 0.0]


def fill_count(state: LedgerState) -> int:
    """Fills of the account's whole life (archived and kept)."""
    return state.fills_archived + len(state.fills)
