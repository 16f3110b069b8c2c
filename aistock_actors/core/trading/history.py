"""The ledger's bounded fill window (#18), pure: which fills move out to the archive, and the
account they leave behind (:class:`~aistock_actors.core.trading.orders.HistoryBase`).

The ledger keeps the newest :data:`RECENT_FILLS` fills, and at least the newest ``keep_closing``
closing fills (the adaptive risk rules' win rate reads them: ``risk.performance_window``). Once
more than :data:`ARCHIVE_BATCH` fills are older than that, they move out together, so a trade
step's write does not grow with the account's age and moving costs O(1) per fill on average.
``fills_archived`` numbers the fills (fill ``k`` of the account's life is ``fills[k -
fills_archived]`` while kept), and ``history_base`` is the account right after the moved fills,
from which :func:`~aistock_actors.core.trading.ledger.reconcile` replays the kept ones.
"""

from __future__ import annotations

import msgspec

from aistock_actors.core.trading.execution import replay_fills
from aistock_actors.core.trading.orders import Fill, HistoryBase, LedgerState

RECENT_FILLS = 200
"""Fills the ledger always keeps (the newest)."""
ARCHIVE_BATCH = 200
"""Fills beyond the window that move out together."""


def window_start(fills: list[Fill], keep_closing: int) -> int:
    """Index of the oldest fill the window must keep."""
    start = max(len(fills) - RECENT_FILLS, 0)
    if keep_closing <= 0:
        return start
    seen = 0
    for index in range(len(fills) - 1, -1, -1):
        if fills[index].closed_quantity > 0.0:
            seen += 1
            if seen >= keep_closing:
                return min(start, index)
    return 0


def split_history(state: LedgerState, keep_closing: int = 0) -> tuple[LedgerState, list[Fill]]:
    """``(kept, moved)``: ``moved`` is empty until more than :data:`ARCHIVE_BATCH` fills are
    older than the window, then it holds every one of them, oldest first, and ``kept`` starts
    at the window with ``fills_archived`` and ``history_base`` moved on past them."""
    cut = window_start(state.fills, keep_closing)
    if cut <= ARCHIVE_BATCH:
        return state, []
    moved = list(state.fills[:cut])
    book, _ = replay_fills(state.initial_cash, moved, state.history_base)
    base = HistoryBase(
        cash=book.cash,
        realised_pnl=book.realised,
        commissions_paid=book.commissions,
        positions=dict(sorted(book.positions.items())),
    )
    kept = msgspec.structs.replace(
        state,
        fills=list(state.fills[cut:]),
        fills_archived=state.fills_archived + cut,
        history_base=base,
    )
    return kept, moved


def fill_count(state: LedgerState) -> int:
    """Fills of the account's whole life (archived and kept)."""
    return state.fills_archived + len(state.fills)
