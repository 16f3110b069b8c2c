"""The ledger's bounded equity curve (#18), pure: which points move out to the archive, and what
the drawdown halt and the active model's live returns keep of them.

The ledger keeps the newest :data:`RECENT_POINTS` equity points; once more than
:data:`CURVE_BATCH` points are older than that, they move out together (to
``state/paper/equity/YYYY-MM.jsonl``, ``store/equity_archive.py``), so a save does not grow with
the account's age. Points are numbered over the account's life: point ``k`` is
``equity_curve[k - curve_archived]`` while kept. ``model_since`` and ``drawdown_base`` are such
numbers, and what the moved points meant to them is folded into two small records when they move:

- ``model_archived`` (:class:`~aistock_actors.core.trading.orders.ReturnsRecord`): how many of
  the model's per-bar returns lay between moved points, their growth ``prod(1 + r)`` multiplied in
  order, and whether each was usable -- all the rollback rule reads of them;
- ``drawdown_archived`` (:class:`~aistock_actors.core.trading.orders.DrawdownMark`): the peak and
  the newest of the moved finite points since the base.

So :func:`drawdown_extremes` and :func:`model_record` give exactly what the whole curve gave
(tests/core/trading/test_curve.py checks it as a Hypothesis property).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import msgspec

from aistock_actors.core.trading.orders import (
    DrawdownMark,
    LedgerState,
    ReturnsRecord,
    valid_price,
)

RECENT_POINTS = 2_000
"""Equity points the ledger always keeps (the newest): more than any recent window read from the
ledger alone (the risk governor reads older points from the archive when
``risk.performance_window`` asks for more)."""
CURVE_BATCH = 500
"""Points beyond the window that move out together."""
CurvePoint = tuple[str, float]


def bar_returns(values: Sequence[float]) -> list[float]:
    """Per-bar simple returns ``b / a - 1`` of consecutive values; a pair whose start is not a
    valid price or whose end is not finite gives none."""
    return [
        b / a - 1.0 for a, b in itertools.pairwise(values) if valid_price(a) and math.isfinite(b)
    ]


def fold_returns(
    record: ReturnsRecord | None, returns: Sequence[float], since: str
) -> ReturnsRecord:
    """``record`` (None: empty, starting at ``since``) followed by ``returns``."""
    out = record if record is not None else ReturnsRecord(since=since)
    growth, valid = out.growth, out.valid
    for r in returns:
        growth *= 1.0 + r
        valid = valid and math.isfinite(r) and r >= -1.0
    return msgspec.structs.replace(out, count=out.count + len(returns), growth=growth, valid=valid)


def _local(state: LedgerState, number: int) -> int:
    """Where point ``number`` of the account's life is (or would be) in the window (>= 0)."""
    return max(number - state.curve_archived, 0)


def latest_point(state: LedgerState) -> int:
    """The number of the newest point (0 without any)."""
    return max(state.curve_archived + len(state.equity_curve) - 1, 0)


def split_curve(
    state: LedgerState, *, recent: int | None = None, batch: int | None = None
) -> tuple[LedgerState, list[CurvePoint]]:
    """``(kept, moved)``: ``moved`` is empty until more than ``batch`` (:data:`CURVE_BATCH`)
    points are older than the newest ``recent`` (:data:`RECENT_POINTS`), then it holds all of
    them, oldest first; ``kept`` keeps the window, with ``curve_archived``, ``model_archived`` and
    ``drawdown_archived`` moved on past them."""
    recent = RECENT_POINTS if recent is None else recent
    batch = CURVE_BATCH if batch is None else batch
    if recent < 1:
        raise ValueError(f"recent must be >= 1, got {recent}")
    curve = state.equity_curve
    cut = len(curve) - recent
    if cut <= batch:
        return state, []
    model = state.model_archived
    start = _local(state, state.model_since)
    if start < cut:  # the model's returns from points that move (the last ends at curve[cut])
        values = [v for _, v in curve[start : cut + 1]]
        model = fold_returns(model, bar_returns(values), curve[start][0])
    mark = state.drawdown_archived
    base = _local(state, state.drawdown_base)
    moved_values = [v for _, v in curve[base:cut] if math.isfinite(v)]
    if moved_values:
        peak = max(moved_values) if mark is None else max(mark.peak, max(moved_values))
        mark = DrawdownMark(peak=peak, last=moved_values[-1])
    kept = msgspec.structs.replace(
        state,
        equity_curve=list(curve[cut:]),
        curve_archived=state.curve_archived + cut,
        model_archived=model,
        drawdown_archived=mark,
    )
    return kept, list(curve[:cut])


def drawdown_extremes(state: LedgerState) -> tuple[float, float] | None:
    """``(peak, last)`` of the finite points since ``drawdown_base``, archived ones included
    (None: there are none)."""
    values = [v for _, v in state.equity_curve[_local(state, state.drawdown_base) :]
              if math.isfinite(v)]
    mark = state.drawdown_archived
    if not values:
        return (mark.peak, mark.last) if mark is not None else None
    peak = max(values) if mark is None else max(mark.peak, max(values))
    return peak, values[-1]


def rebase_drawdown(state: LedgerState) -> LedgerState:
    """Measure the drawdown from the latest point on (after the operator acknowledged a halt)."""
    return msgspec.structs.replace(state, drawdown_base=latest_point(state), drawdown_archived=None)


def track_model(state: LedgerState, model_id: str) -> LedgerState:
    """Start a new live record when the model changes (its returns start at the latest point)."""
    if model_id == state.model_id:
        return state
    return msgspec.structs.replace(
        state, model_id=model_id, model_since=latest_point(state), model_archived=None
    )


def model_returns(state: LedgerState) -> list[float]:
    """Per-bar simple returns of the paper equity since ``model_id`` started trading that are
    still in the window (the older ones are folded in ``model_archived``)."""
    return bar_returns([v for _, v in state.equity_curve[_local(state, state.model_since) :]])


def model_record(state: LedgerState) -> ReturnsRecord:
    """All the model's returns since it started trading, folded (archived ones included)."""
    return fold_returns(state.model_archived, model_returns(state), model_started(state))


def model_started(state: LedgerState) -> str:
    """Timestamp of the point the model's record starts from ("" without any point)."""
    if state.model_archived is not None:
        return state.model_archived.since
    curve = state.equity_curve
    if not curve:
        return ""
    return curve[min(_local(state, state.model_since), len(curve) - 1)][0]
