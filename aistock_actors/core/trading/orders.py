"""Paper-trading data types: bars, positions, orders, fills and the ledger state, pure.

Shared by :mod:`~aistock_actors.core.trading.execution` (the fill simulation) and
:mod:`~aistock_actors.core.trading.ledger` (the account), which re-exports every name here.
Quantities
are signed (negative = short) and may be fractional. Timestamps are ISO-8601 strings of the bar
they belong to (``2024-03-01`` for a daily bar).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Literal

import msgspec

from aistock_actors.core.trading.costs import Side

RemainderPolicy = Literal["carry", "cancel"]
QTY_EPS = 1e-9
"""Quantities this small are treated as zero (a closed position is removed)."""


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    """One OHLCV bar of a symbol; ``volume`` is in shares."""

    open: float
    high: float
    low: float
    close: float
    volume: float


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """A holding; ``last_price`` is the most recent market price (None = never marked)."""

    symbol: str
    quantity: float
    entry_price: float
    """Volume-weighted price of the currently open quantity (for P&L only, never for weights)."""
    last_price: float | None = None
    last_price_at: str = ""


class Order(msgspec.Struct, frozen=True, kw_only=True):
    """A market order; ``quantity`` is signed (+ buy, - sell)."""

    order_id: str
    symbol: str
    quantity: float
    decision_price: float
    """Price when planned: the realised cost's reference (arrival price); 0 = unknown."""
    cycle_id: str
    """The trading cycle that planned it (the PaperTrader uses the decision bar's timestamp)."""
    model_id: str
    reason: str = "rebalance"
    root_order_id: str = ""
    """Id of the first order of a carry chain ("" for an original order)."""
    attempt: int = 0
    carried_at: str = ""
    """Bar timestamp at which this remainder was carried; it cannot fill against that bar."""

    @property
    def side(self) -> Side:
        return "buy" if self.quantity > 0 else "sell"


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """One applied fill; the fill log is the ledger's source of truth (see ``reconcile``)."""

    order_id: str
    symbol: str
    quantity: float
    price: float
    """Fill price including modelled spread and impact."""
    reference_price: float
    """The bar's open the fill was priced from (also the position's new ``last_price``)."""
    decision_price: float
    commission: float
    realised_pnl: float
    """Price P&L realised by the closed part (commission excluded)."""
    closed_quantity: float
    predicted_cost_bps: float
    realised_cost_bps: float
    """Signed cost vs ``decision_price`` (else the open); price improvement < 0, unclipped."""
    timestamp: str
    position_after: float
    equity_after: float
    bar_volume_notional: float = 0.0
    """The fill bar's traded value (volume x open): the calibrator's liquidity bucket."""


class HistoryBase(msgspec.Struct, frozen=True, kw_only=True):
    """The account right after the fills moved out of the ledger (``LedgerState.fills_archived``):
    what :func:`~aistock_actors.core.trading.ledger.reconcile` replays the kept fills from."""

    cash: float
    realised_pnl: float = 0.0
    commissions_paid: float = 0.0
    positions: dict[str, Position] = {}
    closing_pnl: list[float] = []
    """Net P&L (realised minus commission) of the newest archived closing fills, oldest first:
    the adaptive risk rules' win rate reads them with the kept ones."""


class ReturnsRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Per-bar returns folded into three numbers (#18): the model's returns whose equity points
    moved to the archive (``LedgerState.model_archived``), what the rollback rule needs of them."""

    count: int = 0
    """How many returns."""
    growth: float = 1.0
    """``(1 + r_1) x (1 + r_2) x ...``, multiplied in order from 1.0 (as ``math.prod`` does)."""
    valid: bool = True
    """Every return finite and >= -1 (else the rollback rule reports ``invalid_live_returns``)."""
    since: str = ""
    """Timestamp of the equity point the first return starts from."""


class DrawdownMark(msgspec.Struct, frozen=True, kw_only=True):
    """The finite equity points since ``drawdown_base`` that moved to the archive (#18): their
    peak and the newest of them (``LedgerState.drawdown_archived``)."""

    peak: float
    last: float


class LedgerState(msgspec.Struct, frozen=True, kw_only=True):
    """The whole paper account; persisted as JSON by the PaperTrader (``state/paper/``)."""

    initial_cash: float
    cash: float
    positions: dict[str, Position] = {}
    open_orders: list[Order] = []
    applied_order_ids: list[str] = []
    """Ids applied (filled or cancelled) since ``as_of`` last moved: an order is only ever planned
    against ``as_of`` (its id names that bar), so an earlier bar's id can never come back
    (:func:`~aistock_actors.core.trading.cycle.advance` forgets them, #18)."""
    fills: list[Fill] = []
    """The newest fills (a window, #18); the older ones are archived (``store/fill_archive.py``)."""
    realised_pnl: float = 0.0
    commissions_paid: float = 0.0
    equity_curve: list[tuple[str, float]] = []
    """The newest equity points (a window, #18): point ``k`` of the account's life is
    ``equity_curve[k - curve_archived]``; older ones are archived (``store/equity_archive.py``)."""
    updated_at: str = ""
    as_of: str = ""
    """Timestamp of the newest bar processed ("" = none yet): orders fill at the bar after it."""
    as_of_ns: int | None = None
    """``as_of`` as int64 nanoseconds UTC (what comparisons use)."""
    model_id: str = ""
    """The model whose signals the open orders and recent returns belong to."""
    model_since: int = 0
    """Number (in the account's life, archived points counted) of the first point under
    ``model_id``; before #18's window it was an index into the whole curve, the same number."""
    drawdown_base: int = 0
    """Number (as ``model_since``) of the point from which the drawdown halt measures its peak."""
    drawdown_tripped: bool = False
    """The drawdown halt fired; the next trading cycle (after the operator's resume) rebases."""
    fills_archived: int = 0
    """Fills moved out of ``fills`` (oldest first): ``fills[i]`` is fill number
    ``fills_archived + i`` of the account's life (#18)."""
    history_base: HistoryBase | None = None
    """The account after those archived fills (None: ``initial_cash``, nothing held)."""
    curve_archived: int = 0
    """Equity points moved out of ``equity_curve`` (oldest first, #18)."""
    model_archived: ReturnsRecord | None = None
    """The returns under ``model_id`` between archived points (None: none archived yet)."""
    drawdown_archived: DrawdownMark | None = None
    """The archived finite points since ``drawdown_base`` (None: none)."""


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``execute_orders`` did with each order id."""

    filled: list[str] = []
    partially_filled: list[str] = []
    carried: list[str] = []
    """Ids of the new child orders holding carried remainders."""
    cancelled: list[str] = []
    duplicates: list[str] = []
    """Already applied before: skipped (crash replay)."""
    deferred: list[str] = []
    """Carried against this very bar: left open for the next one."""
    capped_by_limits: list[str] = []
    halted: bool = False
    warnings: list[str] = []


def valid_price(price: float | None) -> bool:
    """A usable price: finite and strictly positive."""
    return price is not None and math.isfinite(price) and price > 0.0


def order_id(cycle_id: str, symbol: str, model_id: str) -> str:
    """Deterministic order id: the same cycle, symbol and model always give the same id."""
    digest = hashlib.sha256(msgspec.json.encode([cycle_id, symbol, model_id])).hexdigest()
    return f"ord-{digest[:24]}"


def marked_value(positions: Iterable[Position], skip: str = "") -> float:
    """Value of ``positions`` at ``last_price`` (unmarked ones and ``skip`` left out)."""
    return math.fsum(
        p.quantity * p.last_price
        for p in positions
        if p.symbol != skip and p.last_price is not None and valid_price(p.last_price)
    )
