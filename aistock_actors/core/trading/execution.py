"""Simulated execution of paper orders against the next bar (T3, T4), pure.

Orders are market orders filled at the given bar's OPEN moved by the cost model's slippage
(half spread + square-root market impact), capped at ``max_volume_share`` of that bar's volume;
a remainder is carried (as a child order with a derived id) or cancelled. Every order id is
applied at most once (``applied_order_ids``), so replaying an execution after a crash never fills
twice. ``halted()`` is asked immediately before each fill is applied; once it says True nothing
more fills and every open order is cancelled.

Which bar is "the next bar" is the caller's choice: the PaperTrader passes the first bar after the
one its orders were planned on (see :mod:`aistock_actors.core.trading.cycle`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import msgspec

from aistock_actors.core.risk.policy import RiskLimits, check_order_against_limits
from aistock_actors.core.trading.costs import CostModel, realised_cost_bps
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
    valid_price,
)


@dataclass
class Book:
    """Mutable working copy of a :class:`LedgerState` during one execution (or a replay)."""

    cash: float
    positions: dict[str, Position]
    applied: list[str]
    realised: float
    commissions: float
    open_orders: list[Order] = field(default_factory=list)
    new_fills: list[Fill] = field(default_factory=list)
    applied_set: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, state: LedgerState) -> Book:
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


def _limit_capped(book: Book, order: Order, bar: Bar, qty: float, ctx: _Ctx) -> float:
    """Cut ``qty`` so the position stays inside the limits at the fill (after its costs).

    Exposure is valued at the FILL price when that is above the open (a buy pays slippage), so
    no ceiling is passed at the price actually paid (#17); a smaller cut quantity only lowers
    the impact, so the bound computed at ``qty`` holds for the quantity allowed.
    """
    open_ = bar.open
    fill_price = ctx.cost_model.fill_price(order.side, open_, abs(qty) * open_, bar.volume * open_)
    pos = book.positions.get(order.symbol)
    current = pos.quantity if pos is not None else 0.0
    check = check_order_against_limits(
        current_quantity=current,
        order_quantity=qty,
        price=max(open_, fill_price),
        equity=book.cash + marked_value(book.positions.values(), order.symbol) + current * open_,
        limits=ctx.limits,
        cost_per_unit=abs(fill_price - open_) + ctx.cost_model.commission(1.0, fill_price),
    )
    return check.allowed_quantity


def _prepare_fill(
    book: Book, order: Order, bar: Bar, qty: float, ctx: _Ctx
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
        + marked_value(book.positions.values(), order.symbol)
        + held * open_,
        bar_volume_notional=volume_notional if math.isfinite(volume_notional) else 0.0,
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
    book: Book, order: Order, wanted: float, filled: float, ctx: _Ctx, rep: ExecutionReport
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


def _run_order(book: Book, order: Order, ctx: _Ctx, rep: ExecutionReport) -> bool:
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
    book, rep = Book.of(state), ExecutionReport()
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


def replay_fills(
    initial_cash: float, fills: Iterable[Fill], base: HistoryBase | None = None
) -> tuple[Book, list[str]]:
    """Rebuild the account from ``fills`` alone (on top of ``base``, the account after the
    archived fills, if given): the book and the ids filled more than once."""
    if base is None:
        book = Book(cash=initial_cash, positions={}, applied=[], realised=0.0, commissions=0.0)
    else:
        book = Book(cash=base.cash, positions=dict(base.positions), applied=[],
                    realised=base.realised_pnl, commissions=base.commissions_paid)
    repeated: list[str] = []
    for fill in fills:
        if fill.order_id in book.applied_set:
            repeated.append(fill.order_id)
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
    return book, repeated
