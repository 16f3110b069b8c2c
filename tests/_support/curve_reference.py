"""The drawdown and live-returns computations before #18's bounded curve (commit c9eaa63), over
the whole equity curve: what the bounded ones must equal; and a paper account whose older equity
points are archived, for the readers that show the whole curve."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import msgspec

from aistock_actors.core.trading.curve import CURVE_BATCH, RECENT_POINTS
from aistock_actors.core.trading.ledger import Drawdown, LedgerState
from aistock_actors.store.ledger import PaperStore

LONG_CURVE = RECENT_POINTS + CURVE_BATCH + 100
"""Points of :func:`archived_account`: 600 of them move to ``state/paper/equity/``."""


def old_drawdown(curve: list[tuple[str, float]], base: int) -> Drawdown:
    """``current_drawdown`` with ``drawdown_base`` an index into the whole curve."""
    values = [v for _, v in curve[base:] if math.isfinite(v)]
    if not values:
        return Drawdown(0.0, math.nan, math.nan)
    peak, last = max(values), values[-1]
    if peak <= 0.0:
        return Drawdown(1.0, last, peak)
    return Drawdown(max(0.0, 1.0 - last / peak), last, peak)


def old_model_returns(curve: list[tuple[str, float]], since: int) -> list[float]:
    """``model_returns`` with ``model_since`` an index into the whole curve."""
    values = [v for _, v in curve[since:]]
    return [b / a - 1.0 for a, b in itertools.pairwise(values)
            if math.isfinite(a) and a > 0.0 and math.isfinite(b)]


def same(a: float, b: float) -> bool:
    """Equal floats, NaN equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def daily_points(first: int, count: int) -> list[tuple[str, float]]:
    """``count`` daily equity points from day ``first`` after 2000-01-01."""
    start = dt.date(2000, 1, 1)
    return [((start + dt.timedelta(days=first + i)).isoformat(),
             1e5 + math.sin(first + i) * 1e3 + (first + i)) for i in range(count)]


def archived_account(state_dir: Path, initial_cash: float = 100_000.0) -> LedgerState:
    """A paper ledger saved with :data:`LONG_CURVE` daily points: the older ones archived."""
    store = PaperStore(state_dir, None, initial_cash)
    state = store.open_ledger()
    saved = store.save_ledger(msgspec.structs.replace(
        state, equity_curve=daily_points(0, LONG_CURVE)))
    assert saved.curve_archived == LONG_CURVE - RECENT_POINTS
    return saved
