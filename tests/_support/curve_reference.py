"""The drawdown and live-returns computations before #18's bounded curve (commit c9eaa63), over
the whole equity curve: what the bounded ones must equal."""

from __future__ import annotations

import itertools
import math

from aistock_actors.core.trading.ledger import Drawdown


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
