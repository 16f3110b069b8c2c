"""Paper-trading ledger: positions, orders and simulated fills (T3), pure.

Orders are market orders filled at the NEXT bar's open moved by the cost model's slippage, capped
at ``max_volume_share`` of that bar's volume; a remainder is carried (as a child order with a
derived id) or cancelled. Every order id is applied at most once (``applied_order_ids``), so
replaying an execution after a crash never fills twice. ``halted()`` is asked immediately before
each fill is applied; once it says True nothing more fills and every open order is cancelled.

Positions carry ``last_price`` (refreshed by :func:`mark_to_market`; set to the reference price by
a fill); weights and equity use it ONLY, never ``entry_price`` (T3). Quantities are signed
(negative = short) and may be fractional.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from aistock_actors.core.costs import CostModel, Side, realised_cost_bps
from aistock_actors.core.risk import (
    PerformanceSnapshot,
    RiskLimits,
    check_order_against_limits,
    performance_from_equity,
)

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
    """One applied fill; the fill log is the ledger's source of truth (see :func:`reconcile`)."""

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


class LedgerState(msgspec.Struct, frozen=True, kw_only=True):
    """The whole paper account; persisted as JSON by the PaperTrader."""

    initial_cash: float
    cash: float
    positions: dict[str, Position] = {}
    open_orders: list[Order] = []
    applied_order_ids: list[str] = []
    fills: list[Fill] = []
    realised_pnl: float = 0.0
    commissions_paid: float = 0.0
    equity_curve: list[tuple[str, float]] = []
    updated_at: str = ""


class ExecutionReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`execute_orders` did with each order id."""

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


def new_ledger(initial_cash: float, timestamp: str = "") -> LedgerState:
    """An empty account holding ``initial_cash``."""
    return LedgerState(initial_cash=initial_cash, cash=initial_cash, updated_at=timestamp)


def _marked_value(positions: Iterable[Position], skip: str = "") -> float:
    return math.fsum(
        p.quantity * p.last_price
        for p in positions
        if p.symbol != skip and p.last_price is not None and valid_price(p.last_price)
    )


def ledger_equity(state: LedgerState) -> float:
    """Cash plus positions at ``last_price`` (positions without one are left out)."""
    return state.cash + _marked_value(state.positions.values())


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
) -> list[Order]:
    """Orders moving holdings (plus still-open carried orders) to ``target_weights``.

    Held symbols missing from ``target_weights`` target 0. A symbol without a valid price, or
    with a non-finite weight, is left alone. Trades under ``min_order_notional`` are skipped unless
    they close a position. With non-positive equity every target is 0. Reducing orders come first.
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


@dataclass
class _Book:
    """Mutable working copy of a :class:`LedgerState` during one execution."""

    cash: float
    positions: dict[str, Position]
    applied: list[str]
    realised: float
    commissions: float
    open_orders: list[Order] = field(default_factory=list)
    new_fills: list[Fill] = field(default_factory=list)
    applied_set: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, state: LedgerState) -> _Book:
        return cls(
            cash=state.cash,
            positions=dict(state.positions),
            applied=list(state.applied_order_ids),
            realised=state.realised_pnl,
            commissions=state.commissions_paid,
            applied_set=set(state.applied_order_ids),
        )

    def mark_applied(self, oid: str) -> None:
        if oid not in self.applied_set:
            self.applied_set.add(oid)
            self.applied.append(oid)

    def commit(self, fill: Fill, position: Position | None) -> None:
        self.cash -= fill.quantity * fill.price + fill.commission
        self.realised += fill.realised_pnl
        self.commissions += fill.commission
        if position is None:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = position


def next_position(
    pos: Position | None, symbol: str, qty: float, price: float, mark: float, timestamp: str
) -> tuple[Position | None, float, float]:
    """Position after trading ``qty`` at ``price``: ``(position or None, realised, closed qty)``."""
    old = pos.quantity if pos is not None else 0.0
    new = old + qty
    realised, closed, entry = 0.0, 0.0, price
    if pos is not None and old * qty > 0.0:
        entry = (old * pos.entry_price + qty * price) / new
    elif pos is not None and old != 0.0:
        closed = min(abs(qty), abs(old))
        realised = closed * (price - pos.entry_price) * math.copysign(1.0, old)
        entry = pos.entry_price if abs(qty) <= abs(old) else price
    if abs(new) <= QTY_EPS:
        return None, realised, closed
    position = Position(
        symbol=symbol, quantity=new, entry_price=entry, last_price=mark, last_price_at=timestamp
    )
    return position, realised, closed


@dataclass(frozen=True)
class _Ctx:
    bars: Mapping[str, Bar]
    cost_model: CostModel
    timestamp: str
    halted: Callable[[], bool]
    share: float
    policy: RemainderPolicy
    limits: RiskLimits | None


def _volume_capped(order: Order, bar: Bar | None, share: float) -> float:
    if bar is None or not valid_price(bar.open) or not bar.volume > 0.0:
        return 0.0
    cap = share * bar.volume if math.isfinite(bar.volume) else 0.0
    return math.copysign(min(abs(order.quantity), cap), order.quantity)


def _limit_capped(book: _Book, order: Order, bar: Bar, qty: float, ctx: _Ctx) -> float:
    """Cut ``qty`` so the position stays inside the limits at the fill (after its costs)."""
    open_ = bar.open
    fill_price = ctx.cost_model.fill_price(order.side, open_, abs(qty) * open_, bar.volume * open_)
    pos = book.positions.get(order.symbol)
    current = pos.quantity if pos is not None else 0.0
    check = check_order_against_limits(
        current_quantity=current,
        order_quantity=qty,
        price=open_,
        equity=book.cash + _marked_value(book.positions.values(), order.symbol) + current * open_,
        limits=ctx.limits,
        cost_per_unit=abs(fill_price - open_) + ctx.cost_model.commission(1.0, fill_price),
    )
    return check.allowed_quantity


def _prepare_fill(
    book: _Book, order: Order, bar: Bar, qty: float, ctx: _Ctx
) -> tuple[Fill, Position | None]:
    open_ = bar.open
    notional, volume_notional = abs(qty) * open_, bar.volume * open_
    price = ctx.cost_model.fill_price(order.side, open_, notional, volume_notional)
    commission = ctx.cost_model.commission(qty, price)
    pos = book.positions.get(order.symbol)
    position, realised, closed = next_position(pos, order.symbol, qty, price, open_, ctx.timestamp)
    held = position.quantity if position is not None else 0.0
    cash_after = book.cash - qty * price - commission
    reference = order.decision_price if valid_price(order.decision_price) else open_
    fill = Fill(
        order_id=order.order_id,
        symbol=order.symbol,
        quantity=qty,
        price=price,
        reference_price=open_,
        decision_price=order.decision_price,
        commission=commission,
        realised_pnl=realised,
        closed_quantity=closed,
        predicted_cost_bps=ctx.cost_model.predicted_cost_bps(notional, volume_notional),
        realised_cost_bps=realised_cost_bps(order.side, price, reference),
        timestamp=ctx.timestamp,
        position_after=held,
        equity_after=cash_after
        + _marked_value(book.positions.values(), order.symbol)
        + held * open_,
    )
    return fill, position


def _carry(order: Order, remainder: float, timestamp: str) -> Order:
    root = order.root_order_id or order.order_id
    attempt = order.attempt + 1
    return msgspec.structs.replace(
        order,
        order_id=f"{root}.c{attempt}",
        quantity=remainder,
        root_order_id=root,
        attempt=attempt,
        carried_at=timestamp,
    )


def _settle(
    book: _Book, order: Order, wanted: float, filled: float, ctx: _Ctx, rep: ExecutionReport
) -> None:
    """Mark ``order`` applied and carry or cancel what did not fill."""
    book.mark_applied(order.order_id)
    capped = abs(filled) < abs(wanted) - QTY_EPS
    remainder = order.quantity - filled
    if abs(remainder) <= QTY_EPS:
        rep.filled.append(order.order_id)
        return
    if filled != 0.0:
        rep.partially_filled.append(order.order_id)
    if capped:
        rep.capped_by_limits.append(order.order_id)
    if ctx.policy == "carry" and not capped:
        child = _carry(order, remainder, ctx.timestamp)
        book.open_orders.append(child)
        rep.carried.append(child.order_id)
    else:
        rep.cancelled.append(order.order_id)


def _run_order(book: _Book, order: Order, ctx: _Ctx, rep: ExecutionReport) -> bool:
    """Execute one order; False when the halt check refused its fill."""
    if order.order_id in book.applied_set:
        rep.duplicates.append(order.order_id)
        return True
    if order.carried_at and order.carried_at == ctx.timestamp:
        book.open_orders.append(order)
        rep.deferred.append(order.order_id)
        return True
    if not math.isfinite(order.quantity) or abs(order.quantity) <= QTY_EPS:
        rep.warnings.append(f"invalid_quantity:{order.order_id}")
        book.mark_applied(order.order_id)
        rep.cancelled.append(order.order_id)
        return True
    bar = ctx.bars.get(order.symbol)
    wanted = _volume_capped(order, bar, ctx.share)
    if bar is None or wanted == 0.0:
        rep.warnings.append(f"no_volume_or_bar:{order.symbol}")
        _settle(book, order, 0.0, 0.0, ctx, rep)
        return True
    qty = _limit_capped(book, order, bar, wanted, ctx)
    if qty != 0.0:
        fill, position = _prepare_fill(book, order, bar, qty, ctx)
        if ctx.halted():
            return False
        book.commit(fill, position)
        book.new_fills.append(fill)
    _settle(book, order, wanted, qty, ctx, rep)
    return True


def execute_orders(
    state: LedgerState,
    orders: Iterable[Order],
    bars: Mapping[str, Bar],
    cost_model: CostModel,
    *,
    timestamp: str,
    halted: Callable[[], bool],
    max_volume_share: float = 0.1,
    remainder_policy: RemainderPolicy = "carry",
    limits: RiskLimits | None = None,
) -> tuple[LedgerState, list[Fill], ExecutionReport]:
    """Fill the open (carried) orders, then ``orders``, against the next bar ``bars``.

    ``timestamp`` identifies that bar. Each fill is cut to ``max_volume_share`` of the bar's
    volume and, at its fill price, to ``limits`` and the hard ceilings (exposure-adding part only;
    a limit cut is cancelled, never carried). Already-applied ids are skipped. When ``halted()``
    returns True right before a fill, that order, all later ones and every open order are
    cancelled (and marked applied) and the report says ``halted``.
    """
    share = min(max(max_volume_share, 0.0), 1.0) if math.isfinite(max_volume_share) else 0.0
    ctx = _Ctx(bars, cost_model, timestamp, halted, share, remainder_policy, limits)
    book, rep = _Book.of(state), ExecutionReport()
    queue = [*state.open_orders, *orders]
    stopped = False
    for index, order in enumerate(queue):
        if not _run_order(book, order, ctx, rep):
            stopped = True
            for dropped in [*queue[index:], *book.open_orders]:
                if dropped.order_id not in book.applied_set:
                    rep.cancelled.append(dropped.order_id)
                    book.mark_applied(dropped.order_id)
            book.open_orders = []
            break
    new_state = msgspec.structs.replace(
        state,
        cash=book.cash,
        positions=book.positions,
        open_orders=book.open_orders,
        applied_order_ids=book.applied,
        fills=[*state.fills, *book.new_fills],
        realised_pnl=book.realised,
        commissions_paid=book.commissions,
        updated_at=timestamp,
    )
    return new_state, book.new_fills, msgspec.structs.replace(rep, halted=stopped)


def performance_snapshot(
    state: LedgerState, window: int, periods_per_year: int = 252
) -> PerformanceSnapshot:
    """Recent performance for the adaptive risk policy.

    Sharpe and drawdown come from the last ``window`` equity returns, the win rate from the last
    ``window`` closing fills, each net of its own commission.
    """
    size = max(window, 1)
    equity = [value for _, value in state.equity_curve[-(size + 1) :]]
    closing = [f.realised_pnl - f.commission for f in state.fills if f.closed_quantity > 0.0]
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
    """Problems found by replaying the fill log from ``initial_cash`` (empty list = clean)."""
    book = _Book(cash=state.initial_cash, positions={}, applied=[], realised=0.0, commissions=0.0)
    applied, problems = set(state.applied_order_ids), []
    for fill in state.fills:
        if fill.order_id in book.applied_set or fill.order_id not in applied:
            problems.append(f"fill of {fill.order_id}: filled twice or not marked applied")
        book.mark_applied(fill.order_id)
        position, _, _ = next_position(
            book.positions.get(fill.symbol),
            fill.symbol,
            fill.quantity,
            fill.price,
            fill.reference_price,
            fill.timestamp,
        )
        book.commit(fill, position)
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
