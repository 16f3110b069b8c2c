"""One paper-trading cycle, pure: which bar is "next", marking, sizing, drawdown, live returns.

**The "next bar" rule (daily bars).** A cycle runs after the newest stored bar has closed, so no
later price exists yet when it decides. Orders planned at cycle N against the latest bar ``T``
(decision price: ``T``'s close) are persisted as OPEN orders in the ledger and filled at the next
cycle that sees a newer bar, against the FIRST bar after ``T`` on the universe's clock (the
smallest timestamp ``> T`` over all symbols): at that bar's open, moved by the modelled spread and
market impact, capped at ``paper.max_volume_share`` of its volume. A symbol with no bar at that
timestamp does not fill then: its order is carried or cancelled like a volume remainder
(``paper.remainder_policy``). Every newer bar's close is then marked, one equity point per bar, so
a daemon that was down for a week catches up bar by bar (only the first bar trades: orders are
never back-dated into bars the system did not see in time). A cycle with no new bar does nothing.

**Sizing** is the backtest's (``core/pipeline.py``, rule 3 of its docstring): the
symbols with a signal share the book equally, ``direction x min(max_position_fraction,
max_gross_exposure / n)``; symbols without a signal are flat. The caller then applies
:func:`~aistock_actors.core.risk.policy.cap_target_weights` (notional cap, hard ceilings) and the
fill
re-checks the limits at the fill price.

**Order ids** are ``order_id(<decision bar timestamp>, symbol, model_id)``: a cycle re-run after
a crash plans against the same bar with the same model, gets the same ids, and the ledger's
``applied_order_ids`` refuses to fill any of them twice.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from aistock_actors.core.data.bars import format_timestamp
from aistock_actors.core.risk.policy import RiskLimits, clamp_to_ceilings
from aistock_actors.core.strategy.protocol import per_name_weight
from aistock_actors.core.trading.costs import CostModel
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
    valid_price,
)

BarArrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]
"""One symbol's bars as the bar store holds them: int64 ns timestamps and ``(n, 5)`` OHLCV."""
_OPEN, _HIGH, _LOW, _CLOSE, _VOLUME = range(5)


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
        return NewBars(None, {}, [(latest, closes)], latest, latest_closes)
    per_ts: dict[int, dict[str, float]] = {}
    fill_rows: dict[str, tuple[int, npt.NDArray[np.float64]]] = {}
    for symbol, (ts, values) in nonempty.items():
        start = int(np.searchsorted(ts, after_ns, side="right"))
        for i in range(start, len(ts)):
            per_ts.setdefault(int(ts[i]), {})[symbol] = float(values[i, _CLOSE])
        if start < len(ts):
            fill_rows[symbol] = (int(ts[start]), values[start])
    if not per_ts:
        return NewBars(None, {}, [], latest, latest_closes)
    fill_ts = min(per_ts)
    fill_bars = {s: _bar(row) for s, (t, row) in fill_rows.items() if t == fill_ts}
    return NewBars(fill_ts, fill_bars, sorted(per_ts.items()), latest, latest_closes)


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
        state, fills, report = execute_orders(
            state,
            [],
            bars.fill_bars,
            cost_model,
            timestamp=format_timestamp(bars.fill_ts),
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
        state = msgspec.structs.replace(
            state, as_of=format_timestamp(bars.latest_ts), as_of_ns=bars.latest_ts
        )
    return Advance(state, fills, report, warnings)


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
) -> tuple[LedgerState, list[Order]]:
    """Plan orders toward ``weights`` at the ledger's ``as_of`` bar and add them to the open orders.

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
    )
    known = {*state.applied_order_ids, *(o.order_id for o in state.open_orders)}
    fresh = [o for o in orders if o.order_id not in known]
    return msgspec.structs.replace(state, open_orders=[*state.open_orders, *fresh]), fresh


def track_model(state: LedgerState, model_id: str) -> LedgerState:
    """Start a new live record when the model changes (its returns start at the latest point)."""
    if model_id == state.model_id:
        return state
    since = max(len(state.equity_curve) - 1, 0)
    return msgspec.structs.replace(state, model_id=model_id, model_since=since)


def _returns(values: list[float]) -> list[float]:
    return [
        b / a - 1.0 for a, b in itertools.pairwise(values) if valid_price(a) and math.isfinite(b)
    ]


def model_returns(state: LedgerState) -> list[float]:
    """Per-bar simple returns of the paper equity since ``model_id`` started trading."""
    return _returns([v for _, v in state.equity_curve[state.model_since :]])


def rebase_drawdown(state: LedgerState) -> LedgerState:
    """Measure the drawdown from the latest point on (after the operator acknowledged a halt)."""
    return msgspec.structs.replace(state, drawdown_base=max(len(state.equity_curve) - 1, 0))


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
    """``bars x symbols`` close panel on the union of timestamps (NaN where a symbol has none)."""
    import pandas as pd  # lazily: the operator CLI imports this module and must start fast

    columns = {
        s: pd.Series(v[:, _CLOSE], index=pd.Index(ts)) for s, (ts, v) in arrays.items() if len(ts)
    }
    if not columns:
        return np.empty((0, 0), dtype=np.float64)
    frame = pd.DataFrame(columns).sort_index()
    return np.asarray(frame.to_numpy(dtype=np.float64, na_value=np.nan))
