"""How many bars a replay must show before its first step: the trainer's AND the walk-forward
backtest's purged splits (and the meta-labeler's within each) must all hold."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from aistock_actors.core.model.features import WARMUP_BARS
from aistock_actors.core.model.models import ModelParams
from aistock_actors.core.model.validation import purged_walk_forward_splits

IntArray = npt.NDArray[np.int64]


def _fit_splits(start: IntArray, end: IntArray, params: ModelParams) -> None:
    """The splits one :func:`train_model` call makes: the primary's, then the meta-labeler's on
    the out-of-fold rows (``ValueError`` when either has a fold without training data)."""
    splits = purged_walk_forward_splits(start, end, params.n_splits, params.embargo)
    oof = np.concatenate([test for _, test in splits])
    purged_walk_forward_splits(start[oof], end[oof], params.meta_splits, params.embargo)


def splits_hold(bars: int, params: ModelParams, backtest_splits: int,
                backtest_embargo: int) -> bool:
    """Whether ``bars`` bars of one symbol let a candidate be trained on all its labelled rows
    and backtested walk-forward (a model fitted on each fold's training rows): the same split
    functions on the rows that survive the features' warm-up and the label (the tradable label of
    a bar ends at the open ``1 + horizon`` bars later)."""
    rows = bars - WARMUP_BARS - 1 - params.horizon
    if rows <= 0:
        return False
    start = np.arange(rows, dtype=np.int64)
    end = start + 1 + params.horizon
    try:
        _fit_splits(start, end, params)
        for train, _test in purged_walk_forward_splits(start, end, backtest_splits,
                                                       backtest_embargo):
            _fit_splits(start[train], end[train], params)
    except ValueError:
        return False
    return True


def history_needed(params: ModelParams, backtest_splits: int, backtest_embargo: int,
                   floor: int) -> int:
    """The fewest bars, at least ``floor``, from which on every bar count up to a margin of a
    few more bars passes :func:`splits_hold` (so the first steps of a replay can all train and
    backtest). ``ValueError`` if none does within ``8 * floor + 1000`` bars."""
    margin = backtest_splits + params.n_splits + params.meta_splits + 3
    limit = 8 * floor + 1000
    run = 0
    for bars in range(max(1, floor), limit):
        run = run + 1 if splits_hold(bars, params, backtest_splits, backtest_embargo) else 0
        if run > margin:
            return bars - margin
    raise ValueError(f"no history up to {limit} bars lets the walk-forward splits hold")
