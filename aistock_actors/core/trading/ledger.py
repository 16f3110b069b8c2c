"""Paper-trading ledger: the account's positions, marks, planned orders and audit (T3), pure.

Positions carry ``last_price`` (refreshed by :func:`mark_to_market`; set to the reference price by
a fill); weights and equity use it ONLY, never ``entry_price`` (T3). The fill simulation lives in
:mod:`aistock_actors.core.trading.execution` and the data types in
:mod:`aistock_actors.core.trading.orders`;
both are re-exported here, so ``from aistock_actors.core.trading.ledger import Bar,
execute_orders`` keeps
working.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import msgspec

from aistock_actors.core.risk.policy import PerformanceSnapshot, performance_from_equity
from aistock_actors.core.trading.band import holds_in_band
from aistock_actors.core.trading.curve import drawdown_extremes
from aistock_actors.core.trading.execution import Book, execute_orders, next_position, replay_fills
from aistock_actors.core.trading.orders import (
    QTY_EPS,
    Bar,
    ExecutionReport,
    Fill,
    HistoryBase,
    LedgerState,
    Order,
    Position,
    RemainderPolicy,
    marked_value,
    order_id,
    valid_price,
)

__all__ = [
    "QTY_EPS",
    "Bar",
    "Book",
    "ExecutionReport",
    "Fill",
    "HistoryBase",
    "LedgerState",
    "Order",
    "Position",
    "RemainderPolicy",
    "execute_orders",
    "flatten_orders",
    "ledger_equity",
    "mark_to_market",
    "new_ledger",
    "next_position",
    "order_id",
    "performance_snapshot",
    "plan_orders",
    "portfolio_weights",
    "reconcile",
    "valid_price",
]


def new_ledger(initial_cash: float, timestamp: str = "") -> LedgerState:
    """An empty account holding ``initial_cash``."""
    return LedgerState(initial_cash=initial_cash, cash=initial_cash, updated_at=timestamp)


def ledger_equity(state: LedgerState) -> float:
    """Cash plus positions at ``last_price`` (positions without one are left out)."""
    return state.cash + marked_value(state.positions.values())


def mark_to_market(
    state: LedgerState, prices: Mapping[str, float], timestamp: str
) -> tuple[LedgerState, list[str]]:
    """Refresh every position's ``last_price`` and append ``(timestamp, equity)`` to the curve.

    A position without a valid new price keeps its previous ``last_price`` (most recent cycle) and
    is reported; one that never had a price is left out of equity and reported.
    """
    warnings: list[str] = []
    positions: dict[str, Position] = {}
    for symbol, pos in state.positions.items():
        price = prices.get(symbol)
        if valid_price(price):
            pos = msgspec.structs.replace(pos, last_price=price, last_price_at=timestamp)
        elif valid_price(pos.last_price):
            warnings.append(f"no_price:{symbol}: kept last_price from {pos.last_price_at}")
        else:
            warnings.append(f"no_last_price:{symbol}: left out of equity")
        positions[symbol] = pos
    marked = msgspec.structs.replace(state, positions=positions, updated_at=timestamp)
    curve = [*state.equity_curve, (timestamp, ledger_equity(marked))]
    return msgspec.structs.replace(marked, equity_curve=curve), warnings


def portfolio_weights(
    state: LedgerState, equity: float | None = None
) -> tuple[dict[str, float], list[str]]:
    """Signed weights ``quantity x last_price / equity`` from ``last_price`` ONLY (T3).

    A position without a valid ``last_price`` is skipped with a warning; there is no fallback to
    ``entry_price``. Non-positive equity gives no weights and a warning.
    """
    eq = ledger_equity(state) if equity is None else equity
    if not (math.isfinite(eq) and eq > 0.0):
        return {}, [f"non_positive_equity:{eq}"]
    weights: dict[str, float] = {}
    warnings: list[str] = []
    for symbol, pos in state.positions.items():
        if pos.last_price is None or not valid_price(pos.last_price):
            warnings.append(f"missing_last_price:{symbol}: skipped from weights")
            continue
        weights[symbol] = pos.quantity * pos.last_price / eq
    return weights, warnings


def _pending(state: LedgerState) -> dict[str, float]:
    pending: dict[str, float] = {}
    for order in state.open_orders:
        pending[order.symbol] = pending.get(order.symbol, 0.0) + order.quantity
    return pending


def plan_orders(
    state: LedgerState,
    target_weights: Mapping[str, float],
    prices: Mapping[str, float],
    equity: float | None = None,
    *,
    cycle_id: str,
    model_id: str,
    min_order_notional: float = 1.0,
    rebalance_band: float = 0.0,
    max_weight: float = math.inf,
) -> list[Order]:
    """Orders moving holdings (plus still-open carried orders) to ``target_weights``.

    Held symbols missing from ``target_weights`` target 0. A symbol without a valid price, or
    with a non-finite weight, is left alone. A position inside the no-trade band of its target
    (:func:`~aistock_actors.core.trading.band.holds_in_band` with ``rebalance_band`` and
    ``max_weight``, the backtest's rule too) is not resized. Trades under ``min_order_notional``
    are skipped unless they close a position. With non-positive equity every target is 0.
    Reducing orders come first.
    """
    eq = ledger_equity(state) if equity is None else equity
    usable = math.isfinite(eq) and eq > 0.0
    pending = _pending(state)
    symbols = sorted({*target_weights, *state.positions, *pending})
    orders: list[Order] = []
    for symbol in symbols:
        price, weight = prices.get(symbol, math.nan), target_weights.get(symbol, 0.0)
        if not (valid_price(price) and math.isfinite(weight)):
            continue
        pos = state.positions.get(symbol)
        current = (pos.quantity if pos else 0.0) + pending.get(symbol, 0.0)
        target = weight * eq / price if usable else 0.0
        if usable and holds_in_band(current * price / eq, weight, rebalance_band, max_weight):
            continue
        delta = target - current
        closing = target == 0.0 and abs(delta) > QTY_EPS
        if abs(delta) * price < min_order_notional and not closing:
            continue
        orders.append(
            Order(
                order_id=order_id(cycle_id, symbol, model_id),
                symbol=symbol,
                quantity=delta,
                decision_price=price,
                cycle_id=cycle_id,
                model_id=model_id,
            )
        )
    return sorted(orders, key=lambda o: (not _reduces(state, o), o.symbol))


def _reduces(state: LedgerState, order: Order) -> bool:
    pos = state.positions.get(order.symbol)
    return pos is not None and pos.quantity * order.quantity < 0.0


def flatten_orders(
    state: LedgerState, prices: Mapping[str, float], *, cycle_id: str, model_id: str = "flatten"
) -> tuple[LedgerState, list[Order]]:
    """Cancel every open order and return orders closing every position.

    Never blocked by a missing price: the decision price falls back to ``last_price`` (or 0 =
    unknown, then the realised cost is measured against the fill's bar open). The cancelled ids
    are marked applied.
    """
    orders: list[Order] = []
    for symbol, pos in sorted(state.positions.items()):
        price = prices.get(symbol)
        decision = price if valid_price(price) else pos.last_price
        orders.append(
            Order(
                order_id=order_id(cycle_id, symbol, model_id),
                symbol=symbol,
                quantity=-pos.quantity,
                decision_price=decision if decision is not None else 0.0,
                cycle_id=cycle_id,
                model_id=model_id,
                reason="flatten",
            )
        )
    applied = [*state.applied_order_ids, *(o.order_id for o in state.open_orders)]
    return msgspec.structs.replace(state, open_orders=[], applied_order_ids=applied), orders


def performance_snapshot(
    state: LedgerState,
    window: int,
    periods_per_year: int = 252,
    curve: Sequence[tuple[str, float]] | None = None,
) -> PerformanceSnapshot:
    """Recent performance for the adaptive risk policy.

    Sharpe and drawdown come from the last ``window`` equity returns, the win rate from the last
    ``window`` closing fills, each net of its own commission. ``curve``: the newest points with
    archived ones in front when the ledger's window holds fewer than ``window + 1`` (#18).
    """
    size = max(window, 1)
    points = state.equity_curve if curve is None else curve
    equity = [value for _, value in points[-(size + 1) :]]
    closing = [f.realised_pnl - f.commission for f in state.fills if f.closed_quantity > 0.0]
    if state.history_base is not None and len(closing) < size:  # archived ones (#18)
        closing = [*state.history_base.closing_pnl, *closing]
    return performance_from_equity(equity, closing[-size:], periods_per_year)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _position_problem(symbol: str, have: Position | None, want: Position | None) -> str | None:
    if have is None or want is None or not _close(have.quantity, want.quantity):
        return f"position {symbol}: state {have} != replayed {want}"
    if not _close(have.entry_price, want.entry_price):
        return f"position {symbol}: entry {have.entry_price} != replayed {want.entry_price}"
    return None


def reconcile(state: LedgerState) -> list[str]:
    """Problems found by replaying the fill log (empty list = clean).

    The kept fills are replayed from ``history_base`` (the account after the archived fills;
    ``initial_cash`` without one). Checks cash, realised P&L, commissions and every position
    against the replay, that no order id filled twice (within the kept fills) or is applied
    twice, that no fill's order is still open, that no open order is already applied, and that
    every position has a valid ``last_price``.
    """
    book, repeated = replay_fills(state.initial_cash, state.fills, state.history_base)
    applied = set(state.applied_order_ids)
    open_ids = {o.order_id for o in state.open_orders}
    problems = [f"fill of {oid}: order filled twice" for oid in repeated]
    problems += [
        f"fill of {f.order_id}: its order is still open"
        for f in state.fills
        if f.order_id in open_ids
    ]
    if len(applied) != len(state.applied_order_ids):
        problems.append("applied_order_ids holds an id twice")
    if state.fills_archived < 0 or (state.fills_archived > 0) != (state.history_base is not None):
        problems.append(f"fills_archived {state.fills_archived} without a matching history_base")
    totals = (
        ("cash", state.cash, book.cash),
        ("realised_pnl", state.realised_pnl, book.realised),
        ("commissions_paid", state.commissions_paid, book.commissions),
    )
    problems += [f"{n}: state {a} != replayed {b}" for n, a, b in totals if not _close(a, b)]
    for symbol in sorted({*state.positions, *book.positions}):
        problem = _position_problem(symbol, state.positions.get(symbol), book.positions.get(symbol))
        problems += [problem] if problem else []
    problems += [
        f"position {symbol}: no valid last_price (T3)"
        for symbol, pos in state.positions.items()
        if not valid_price(pos.last_price)
    ]
    problems += [
        f"open order {o.order_id} already applied"
        for o in state.open_orders
        if o.order_id in applied
    ]
    return problems


class Drawdown(NamedTuple):
    """Current drawdown from the running peak since ``drawdown_base``."""

    value: float
    """``1 - equity / peak`` (0 when at the peak or without data)."""
    equity: float
    peak: float


def current_drawdown(state: LedgerState) -> Drawdown:
    """The drawdown the halt rule compares with ``risk.max_portfolio_drawdown_halt``: from the
    peak and the newest of the finite points since ``drawdown_base`` (archived ones included,
    :func:`~aistock_actors.core.trading.curve.drawdown_extremes`)."""
    extremes = drawdown_extremes(state)
    if extremes is None:
        return Drawdown(0.0, math.nan, math.nan)
    peak, last = extremes
    if peak <= 0.0:
        return Drawdown(1.0, last, peak)
    return Drawdown(max(0.0, 1.0 - last / peak), last, peak)
