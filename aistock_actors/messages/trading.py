"""Paper-trading messages: the trade step of a cycle (the PaperTrader trades the active model)."""

from __future__ import annotations

from aistock_actors.messages import Reply, Request


class TradePaper(Request, frozen=True, kw_only=True):
    """Fill the open orders at the next bar, mark the portfolio, plan the next orders."""

    cycle_id: str
    """The supervisor's cycle id (for the audit log)."""


class PaperTraded(Reply, frozen=True, kw_only=True):
    """What the trade step did; the persisted ledger (``state/paper/ledger.json``) is the truth."""

    status: str
    """One line for the operator: ``traded`` (orders planned), ``no orders: holding``,
    ``no active model: holding``, ``no new bar: holding``, ``no bars: holding``,
    ``halted: froze``, ``drawdown halt``, ``model unavailable``."""
    model_id: str
    """Active model traded ("" without one)."""
    as_of: str
    """Newest bar processed."""
    fills: int
    """Fills applied this step."""
    orders_planned: int
    """New orders planned this step (they fill at the next bar)."""
    open_orders: int
    positions: int
    equity: float
    cash: float
    drawdown: float
    """Current drawdown from the running peak (the halt rule's measure)."""
    warnings: list[str] = []


PaperTraderInbox = TradePaper
"""What the PaperTrader accepts besides control messages."""
