"""``LiveMarketIndex``: the universe's regime each cycle, extending the equal-weight index by the
new bars' rows instead of rebuilding it from a ``bars x symbols`` panel of the whole history.

:func:`~aistock_actors.core.market.regimes.market_regimes` labels the equal-weight index of the
close panel; the index's return at bar ``t`` reads only panel rows ``t - 1`` and ``t``, and the
index is their running product. So while the history only grows (the bar store appends; a new
bar is newer than every bar seen), the index of the grown panel is the old index continued by
the returns of the new rows, bit for bit: the same element-wise operations, the same per-row
sums, the same sequential product. The labels are then computed by
:func:`~aistock_actors.core.market.regimes.label_regimes` on the whole 1-D index as before (its
rolling statistics run over all history and are cheap in one dimension). Anything else (a symbol
added, removed or rewritten, a late bar inside the known range) rebuilds from the panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.market.regimes import label_regimes, mean_returns, priced, regime_name
from aistock_actors.core.trading.cycle import close_panel

BarArrays = tuple[NDArray[np.int64], NDArray[np.float64]]
_CLOSE = 3


@dataclass
class _Seen:
    """What the index was computed from, to tell whether new arrays only extend it."""

    symbols: list[str]
    counts: list[int]
    last_ts: list[int]
    newest: int
    """The newest timestamp over all symbols (the panel's last row)."""
    last_row: NDArray[np.float64]
    """The panel's last row (NaN where a symbol has no bar then)."""
    raw: NDArray[np.float64]
    """The running product of ``1 + mean return`` per panel row (before NaN-masking)."""
    started: NDArray[np.bool_]


class LiveMarketIndex:
    """:func:`~aistock_actors.core.market.regimes.equal_weight_index` of ``close_panel(arrays)``
    and the regime of its newest bar, updated from the new rows only while the history grows at
    its end."""

    def __init__(self) -> None:
        self._seen: _Seen | None = None

    def index(self, arrays: Mapping[str, BarArrays]) -> NDArray[np.float64]:
        """The equal-weight index of ``arrays``' close panel (every symbol with bars)."""
        items = [(s, ts, values) for s, (ts, values) in arrays.items() if len(ts)]
        seen = self._seen
        if seen is None or not _extends(seen, items):
            seen = self._seen = _rebuild(items)
        elif items and int(max(ts[-1] for _, ts, _ in items)) > seen.newest:
            seen = self._seen = _extend(seen, items)
        return np.where(seen.started, seen.raw, np.nan)

    def regime(self, arrays: Mapping[str, BarArrays]) -> str:
        """The regime name of the newest bar, as
        :func:`~aistock_actors.core.risk.allocator.latest_regime` of the close panel."""
        index = self.index(arrays)
        if not index.size:
            return "unknown"
        return regime_name(int(label_regimes(index)[-1]))


def _extends(seen: _Seen, items: list[tuple[str, NDArray[np.int64], NDArray[np.float64]]]) -> bool:
    """The same symbols, each history the seen one plus bars newer than every seen bar."""
    if [s for s, _, _ in items] != seen.symbols:
        return False
    for (_, ts, _), count, last in zip(items, seen.counts, seen.last_ts, strict=True):
        if len(ts) < count or int(ts[count - 1]) != last:
            return False
        if len(ts) > count and int(ts[count]) <= seen.newest:
            return False
    return True


def _rebuild(items: list[tuple[str, NDArray[np.int64], NDArray[np.float64]]]) -> _Seen:
    panel = close_panel({s: (ts, values) for s, ts, values in items})
    n = len(panel)
    raw, started = _raw_index(panel)
    return _Seen(
        symbols=[s for s, _, _ in items],
        counts=[len(ts) for _, ts, _ in items],
        last_ts=[int(ts[-1]) for _, ts, _ in items],
        newest=max((int(ts[-1]) for _, ts, _ in items), default=0),
        last_row=panel[-1].copy() if n else np.empty(0),
        raw=raw,
        started=started,
    )


def _raw_index(panel: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """:func:`equal_weight_index` before its NaN mask: (running product, started)."""
    if panel.ndim != 2 or not panel.size:
        return np.empty(0), np.empty(0, dtype=np.bool_)
    ok = priced(panel)
    raw = np.cumprod(1.0 + mean_returns(panel, ok), dtype=np.float64)
    started: NDArray[np.bool_] = np.logical_or.accumulate(ok.any(axis=1))
    return raw, started


def _extend(seen: _Seen, items: list[tuple[str, NDArray[np.int64], NDArray[np.float64]]]) -> _Seen:
    """``seen`` continued by the rows of the bars newer than ``seen.newest``."""
    new = [(ts[count:], values[count:, _CLOSE]) for (_, ts, values), count in
           zip(items, seen.counts, strict=True)]
    times = np.unique(np.concatenate([ts for ts, _ in new]))
    rows = np.full((len(times) + 1, len(items)), np.nan)
    rows[0] = seen.last_row
    for column, (ts, closes) in enumerate(new):
        rows[1 + np.searchsorted(times, ts), column] = closes
    ok = priced(rows)
    growth = np.cumprod(np.concatenate(([seen.raw[-1]], 1.0 + mean_returns(rows, ok)[1:])))
    started = np.logical_or.accumulate(np.concatenate(([seen.started[-1]], ok[1:].any(axis=1))))
    return _Seen(
        symbols=seen.symbols,
        counts=[len(ts) for _, ts, _ in items],
        last_ts=[int(ts[-1]) for _, ts, _ in items],
        newest=int(times[-1]),
        last_row=rows[-1].copy(),
        raw=np.concatenate([seen.raw, growth[1:]]),
        started=np.concatenate([seen.started, started[1:]]),
    )
