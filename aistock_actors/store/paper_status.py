"""What ``--status`` shows of the paper account (read-only; the files are ``store/ledger.py``'s)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from aistock_actors.core.trading.history import fill_count
from aistock_actors.core.trading.ledger import current_drawdown, ledger_equity
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.ledger import DrawdownHalt, PaperStore


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    """One position as ``--status`` shows it."""

    symbol: str
    quantity: float
    entry_price: float
    last_price: float | None
    value: float
    weight: float


class PaperStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The paper account as ``--status`` shows it."""

    as_of: str
    model_id: str
    equity: float
    cash: float
    initial_cash: float
    drawdown: float
    realised_pnl: float
    positions: list[PositionView]
    open_orders: int
    fills: int
    drawdown_halt: DrawdownHalt | None


def paper_status(state_dir: Path) -> PaperStatus | None:
    """Read-only summary of the ledger (None before the first trade step)."""
    store = PaperStore(state_dir, None, 0.0)
    if not store.ledger_path.exists() and not backup_path(store.ledger_path).exists():
        return None
    state = store.load_ledger()
    equity = ledger_equity(state)
    views = [
        PositionView(
            symbol=p.symbol,
            quantity=p.quantity,
            entry_price=p.entry_price,
            last_price=p.last_price,
            value=p.quantity * (p.last_price or 0.0),
            weight=p.quantity * (p.last_price or 0.0) / equity if equity > 0 else 0.0,
        )
        for p in sorted(state.positions.values(), key=lambda p: p.symbol)
    ]
    return PaperStatus(
        as_of=state.as_of,
        model_id=state.model_id,
        equity=equity,
        cash=state.cash,
        initial_cash=state.initial_cash,
        drawdown=current_drawdown(state).value,
        realised_pnl=state.realised_pnl,
        positions=views,
        open_orders=len(state.open_orders),
        fills=fill_count(state),
        drawdown_halt=store.read_drawdown_halt(),
    )


