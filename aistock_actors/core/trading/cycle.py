"""One paper-trading cycle, pure: which bar is "next", marking, sizing, drawdown, live returns.

**The "next bar" rule (daily bars).** A cycle runs after the newest stored bar has closed, so no
later price exists yet when it decides. Orders planned at cycle N against the latest bar ``T``
(decision price: ``T``'s close) are persisted as OPEN orders in the ledger and filled at the next
cycle that sees a newer bar, against the FIRST bar after ``T`` on the universe's clock (the
smallest timestamp ``> T`` over all symbols): at that bar's open, moved by the modelled spread and
market impact, capped at ``paper.max_volume_share`` of its volume. Every newer bar's close is then
marked, one equity point per bar, so a daemon that was down for a week catches up bar by bar
(orders are planned only on the newest bar: never back-dated into bars the system did not see in
time). A cycle with no new bar does nothing.

**Late bars** (:func:`fill_open_orders`). Bars arrive per symbol (a feed, or CSV files rewritten
one by one), so a cycle can see ``T+1`` for some symbols and still ``T`` for others. A symbol
whose bar is late is not traded on stale prices: it has no decision price on ``T+1`` (only the
symbols with a bar at the newest timestamp do), and a held position is kept (a symbol without a
price is left alone). Its order decided on ``T`` is NOT filled at a later bar: it stays open,
same id, and fills at its own symbol's first bar after ``T`` (the open a real market order sent
after ``T``'s close gets), when that bar has arrived. A volume remainder carried at bar ``B``
(``paper.remainder_policy = "carry"``) fills likewise at its symbol's first bar after ``B``,
with the parent's decision price; ``cancel`` drops it.

**Sizing** is the backtest's (``core/pipeline.py``, rule 3 of its docstring): the
symbols with a signal share the book equally, ``direction x min(max_position_fraction,
max_gross_exposure / n)``; symbols without a signal are flat. The caller then applies
:func:`~aistock_actors.core.risk.policy.cap_target_weights` (notional cap, hard ceilings) and the
fill
re-checks the limits at the fill price. A held position whose weight only drifted inside
``paper.rebalance_band`` of its target is not resized (:func:`plan_cycle`; the backtest applies
the same band).

**Order ids** are ``order_id(<decision bar timestamp>, symbol, model_id)``: a cycle re-run after
a crash plans against the same bar with the same model, gets the same ids, and the ledger's
``applied_order_ids`` refuses to fill any of them twice; once ``as_of`` moves on, no id of the
earlier bar can be planned again and :func:`forget_applied` drops them (#18).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from aistock_actors.core.data.bar_fields import timestamp_ns
from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.core.risk.policy import RiskLimits, clamp_to_ceilings
from aistock_actors.core.strategy.protocol import per_name_weight
from aistock_actors.core.trading.costs import CostModel
from aistock_actors.core.trading.curve import model_returns as model_returns  # re-exported
from aistock_actors.core.trading.curve import rebase_drawdown as rebase_drawdown
from aistock_actors.core.trading.curve import track_model as track_model
from aistock_actors.core.trading.execution import execute_orders
from aistock_actors.core.trading.ledger import Drawdown as Drawdown  # re-exported
from aistock_actors.core.trading.ledger import current_drawdown as current_drawdown
from aistock_actors.core.trading.ledger import mark_to_market, plan_orders
from aistock_actors.core.trading.orders import (
    Bar,
    ExecutionReport,
    Fill,
    LedgerState,
    Order,
    RemainderPolicy,
)

BarArrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""One symbol's bars as the bar store holds them: int64 ns timestamps and ``(n, 5)`` OHLCV."""
_OPEN, _HIGH, _LOW, _CLOSE, _VOLUME = range(5)
_NO_ARRAYS: Mapping[str, BarArrays] = MappingProxyType({})


class NewBars(NamedTuple):
    """What the bar store holds beyond the ledger's ``as_of``."""

    fill_ts: int | None
    """The first bar after ``as_of`` on the universe's clock (None: nothing new, or first run)."""
    fill_bars: dict[str, Bar]
    """The bars AT ``fill_ts``: the only prices open orders fill at."""
    marks: list[tuple[int, dict[str, float]]]
    """``(timestamp, closes of the symbols with a bar then)`` for every new bar, oldest first."""
    latest_ts: int | None
    """Newest timestamp over all symbols (None without any bar)."""
    latest_closes: dict[str, float]
    """Closes of the symbols whose newest bar is at ``latest_ts``: the decision prices."""
    stored: Mapping[str, BarArrays] = _NO_ARRAYS
    """Every stored bar (non-empty symbols): where an open order finds its own next bar."""


def _bar(row: npt.NDArray[np.float64]) -> Bar:
    return Bar(
        open=float(row[_OPEN]),
        high=float(row[_HIGH]),
        low=float(row[_LOW]),
        close=float(row[_CLOSE]),
        volume=float(row[_VOLUME]),
    )


def new_bars(arrays: Mapping[str, BarArrays], after_ns: int | None) -> NewBars:
    """Split the stored bars around ``after_ns`` (see the module docstring).

    On a first run (``after_ns`` None) nothing fills and only the newest bar is marked.
    """
    nonempty = {s: a for s, a in arrays.items() if len(a[0])}
    if not nonempty:
        return NewBars(None, {}, [], None, {})
    latest = max(int(ts[-1]) for ts, _ in nonempty.values())
    latest_closes = {s: float(v[-1, _CLOSE]) for s, (ts, v) in nonempty.items() if ts[-1] == latest}
    if after_ns is None:
        closes = {s: float(v[-1, _CLOSE]) for s, (_, v) in nonempty.items()}
        return NewBars(None, {}, [(latest, closes)], latest, latest_closes, nonempty)
    per_ts: dict[int, dict[str, float]] = {}
    fill_rows: dict[str, tuple[int, npt.NDArray[np.float64]]] = {}
    for symbol, (ts, values) in nonempty.items():
        start = int(np.searchsorted(ts, after_ns, side="right"))
        for i in range(start, len(ts)):
            per_ts.setdefault(int(ts[i]), {})[symbol] = float(values[i, _CLOSE])
        if start < len(ts):
            fill_rows[symbol] = (int(ts[start]), values[start])
    if not per_ts:
        return NewBars(None, {}, [], latest, latest_closes, nonempty)
    fill_ts = min(per_ts)
    fill_bars = {s: _bar(row) for s, (t, row) in fill_rows.items() if t == fill_ts}
    return NewBars(fill_ts, fill_bars, sorted(per_ts.items()), latest, latest_closes, nonempty)


class Advance(NamedTuple):
    """Result of :func:`advance`."""

    state: LedgerState
    fills: list[Fill]
    report: ExecutionReport
    warnings: list[str]


def advance(
    state: LedgerState,
    bars: NewBars,
    cost_model: CostModel,
    *,
    halted: Callable[[], bool],
    limits: RiskLimits | None,
    max_volume_share: float,
    remainder_policy: RemainderPolicy,
) -> Advance:
    """Fill the open orders at ``bars.fill_bars``, then mark every new bar; move ``as_of``."""
    fills: list[Fill] = []
    report = ExecutionReport()
    if bars.fill_ts is not None and state.open_orders:
        state, fills, report = fill_open_orders(
            state,
            bars,
            cost_model,
            halted=halted,
            max_volume_share=max_volume_share,
            remainder_policy=remainder_policy,
            limits=limits,
        )
    warnings: list[str] = []
    for ts, closes in bars.marks:
        state, notes = mark_to_market(state, closes, format_timestamp(ts))
        warnings += notes
    if bars.latest_ts is not None and bars.marks:
        state = forget_applied(msgspec.structs.replace(
            state, as_of=format_timestamp(bars.latest_ts), as_of_ns=bars.latest_ts
        ))
    return Advance(state, fills, report, warnings)


def forget_applied(state: LedgerState) -> LedgerState:
    """Drop the applied ids once ``as_of`` has moved past the bar they were planned on (#18).

    Orders are planned only against ``as_of`` (:func:`plan_cycle`: the id names that bar), open
    orders are never applied, and a carried remainder's id derives from an order that is no longer
    open; so no id of an earlier bar can be presented again, and keeping them would only grow the
    ledger by every order ever placed. Within a bar (a re-run after a crash, a model activated
    since, a halt's cancellations) the ids stay and refuse a second fill.
    """
    if not state.applied_order_ids:
        return state
    return msgspec.structs.replace(state, applied_order_ids=[])


def order_bar(order: Order, bars: NewBars) -> tuple[int, Bar | None] | None:
    """``(timestamp, bar)`` ``order`` fills at: its symbol's first stored bar after the bar it was
    decided on (``cycle_id``) or carried at (``carried_at``); None while that bar has not arrived.

    An order whose ``cycle_id`` is not a bar timestamp goes to the universe's next bar
    (``bars.fill_ts``), where a symbol without a bar is carried or cancelled by ``execute_orders``.
    """
    anchor = timestamp_ns(order.carried_at or order.cycle_id)
    if anchor is None:
        fallback = bars.fill_ts
        return (fallback, bars.fill_bars.get(order.symbol)) if fallback is not None else None
    stored = bars.stored.get(order.symbol)
    if stored is None:
        return None
    ts, values = stored
    i = int(np.searchsorted(ts, anchor, side="right"))
    return (int(ts[i]), _bar(values[i])) if i < len(ts) else None


def _merged(a: ExecutionReport, b: ExecutionReport) -> ExecutionReport:
    x, y = msgspec.structs.asdict(a), msgspec.structs.asdict(b)
    merged: dict[str, Any] = {k: [*x[k], *y[k]] for k in x if k != "halted"}
    return ExecutionReport(**merged, halted=a.halted or b.halted)


def fill_open_orders(
    state: LedgerState,
    bars: NewBars,
    cost_model: CostModel,
    *,
    halted: Callable[[], bool],
    limits: RiskLimits | None,
    max_volume_share: float,
    remainder_policy: RemainderPolicy,
) -> tuple[LedgerState, list[Fill], ExecutionReport]:
    """Fill each open order at :func:`order_bar` (the late-bar rule of the module docstring).

    Orders are executed bar by bar, oldest bar first (the ledger's order kept within a bar); an
    order whose bar has not arrived stays open with its id (reported ``deferred`` and
    ``late_bar:<symbol>``). Once ``halted()`` stops a fill, every other open order is cancelled.
    """
    due: dict[int, list[Order]] = {}
    at: dict[int, dict[str, Bar]] = {}
    waiting: list[Order] = []
    for order in state.open_orders:
        found = order_bar(order, bars)
        if found is None:
            waiting.append(order)
            continue
        ts, bar = found
        due.setdefault(ts, []).append(order)
        if bar is not None:
            at.setdefault(ts, {})[order.symbol] = bar
    report = ExecutionReport(
        deferred=[o.order_id for o in waiting],
        warnings=[f"late_bar:{o.symbol}: {o.order_id} waits for its next bar" for o in waiting],
    )
    fills: list[Fill] = []
    carried: list[Order] = []
    for ts in sorted(due):
        state, new, step = execute_orders(
            msgspec.structs.replace(state, open_orders=due[ts]),
            [],
            at.get(ts, {}),
            cost_model,
            timestamp=format_timestamp(ts),
            halted=halted,
            max_volume_share=max_volume_share,
            remainder_policy=remainder_policy,
            limits=limits,
        )
        fills += new
        carried += state.open_orders
        report = _merged(report, step)
        if step.halted:  # nothing else fills: every other open order is cancelled
            rest = [o.order_id for t in sorted(due) if t > ts for o in due[t]]
            rest += [o.order_id for o in [*carried, *waiting]]
            applied = set(state.applied_order_ids)
            dropped = list(dict.fromkeys(oid for oid in rest if oid not in applied))
            report = msgspec.structs.replace(
                report, deferred=[], cancelled=[*report.cancelled, *dropped]
            )
            return (
                msgspec.structs.replace(
                    state,
                    open_orders=[],
                    applied_order_ids=[*state.applied_order_ids, *dropped],
                ),
                fills,
                report,
            )
    return msgspec.structs.replace(state, open_orders=[*waiting, *carried]), fills, report


def signal_weights(directions: Mapping[str, int], limits: RiskLimits) -> dict[str, float]:
    """The backtest's sizing rule: each signalled symbol holds the same fixed weight,
    ``min(max_position_fraction, max_gross_exposure / n)`` with ``n`` the symbols in
    ``directions`` (the universe, flat ones included), never renormalised over the signalled
    ones (:func:`~aistock_actors.core.strategy.protocol.per_name_weight`)."""
    eff = clamp_to_ceilings(limits)
    active = {s: d for s, d in directions.items() if d != 0}
    if not active:
        return {}
    per_name = min(
        per_name_weight(len(directions), eff.max_position_fraction, eff.max_gross_exposure), 1.0
    )
    return {s: math.copysign(per_name, d) for s, d in sorted(active.items())}


def plan_cycle(
    state: LedgerState,
    weights: Mapping[str, float],
    prices: Mapping[str, float],
    *,
    min_order_notional: float,
    rebalance_band: float = 0.0,
    max_weight: float = math.inf,
) -> tuple[LedgerState, list[Order]]:
    """Plan orders toward ``weights`` at the ledger's ``as_of`` bar and add them to the open orders.

    ``rebalance_band`` (``paper.rebalance_band``) and ``max_weight`` (the live position limit):
    the no-trade band of :func:`~aistock_actors.core.trading.band.holds_in_band`, which the
    backtest applies too (``FillLimits``).

    Ids already applied or already open are skipped, so planning twice against the same bar with
    the same model adds nothing.
    """
    orders = plan_orders(
        state,
        weights,
        prices,
        cycle_id=state.as_of,
        model_id=state.model_id,
        min_order_notional=min_order_notional,
        rebalance_band=rebalance_band,
        max_weight=max_weight,
    )
    known = {*state.applied_order_ids, *(o.order_id for o in state.open_orders)}
    fresh = [o for o in orders if o.order_id not in known]
    return msgspec.structs.replace(state, open_orders=[*state.open_orders, *fresh]), fresh


def flatten_bars(bars: NewBars, arrays: Mapping[str, BarArrays]) -> tuple[dict[str, Bar], str]:
    """The prices a flatten fills at, and their timestamp: the next price the trader has.

    That is the first bar after ``as_of`` if one was stored, else each symbol's newest bar taken
    at its close (an open equal to that close): paper trading has no live quote after a halt.
    """
    if bars.fill_ts is not None:
        return dict(bars.fill_bars), format_timestamp(bars.fill_ts)
    out: dict[str, Bar] = {}
    for symbol, (ts, values) in arrays.items():
        if len(ts):
            close = float(values[-1, _CLOSE])
            volume = float(values[-1, _VOLUME])
            out[symbol] = Bar(open=close, high=close, low=close, close=close, volume=volume)
    stamp = format_timestamp(bars.latest_ts) if bars.latest_ts is not None else ""
    return out, stamp


def close_panel(arrays: Mapping[str, BarArrays]) -> npt.NDArray[np.float64]:
    """``bars x symbols`` close panel on the union of timestamps (NaN where a symbol has none).

    Columns in ``arrays``' order, symbols without bars left out. Each symbol's timestamps are
    strictly increasing (the bar store's rule), so placing each close at its row of the sorted
    union gives exactly pandas' aligned frame, without building 500 Series to align.
    """
    items = [(ts, values) for ts, values in arrays.values() if len(ts)]
    if not items:
        return np.empty((0, 0), dtype=np.float64)
    first = items[0][0]
    if all(ts is first or np.array_equal(ts, first) for ts, _ in items):  # one clock for all
        return np.column_stack([values[:, _CLOSE] for _, values in items]).astype(np.float64)
    times = np.unique(np.concatenate([ts for ts, _ in items]))
    panel = np.full((len(times), len(items)), np.nan)
    for column, (ts, values) in enumerate(items):
        panel[np.searchsorted(times, ts), column] = values[:, _CLOSE]
    return panel
