"""Walk-forward out-of-sample test of any Strategy, on the same splits, sizing and simulator as the
model pipeline.

1. ``features(frames)`` once (they are causal); each row's tradable forward return is the log
   return from the NEXT bar's open over ``horizon`` bars (fills happen at the next open) and its
   label window ends at that exit bar.
2. :func:`~aistock_actors.core.model.validation.purged_walk_forward_splits` cuts the rows into
   ``n_splits + 1`` blocks; fold ``k`` fits on the purged, embargoed rows before block ``k``
   (``fit`` never sees a row whose forward return reaches into the test block) and emits weights
   on block ``k``. Folds are independent jobs (:func:`fold_weights`, given only the shared
   features and returns plus its own row positions), so a pool fits them side by side.
3. The weights (fractions of a full position, checked by
   :func:`~aistock_actors.core.strategy.protocol.check_weights`) are sized with the fixed
   :func:`~aistock_actors.core.strategy.protocol.per_name_weight` and simulated with
   :func:`~aistock_actors.core.model.simulation.simulate_window`: next-open fills, costs, bars per
   year from the timestamps.

Anything a strategy raises, or returns wrong, becomes one :class:`StrategyError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.curves import downsample_curve
from aistock_actors.core.backtest.simulator import BacktestMetrics
from aistock_actors.core.model import labels
from aistock_actors.core.model.simulation import SimulationSpec, Sizing, simulate_window
from aistock_actors.core.model.validation import purged_walk_forward_splits
from aistock_actors.core.strategy.protocol import (
    Strategy,
    check_weights,
    missing_methods,
    per_name_weight,
)
from aistock_actors.errors import AutopilotError, StrategyError

R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class StrategyReport:
    """One strategy's walk-forward out-of-sample result."""

    name: str
    metrics: BacktestMetrics
    bars: int
    """Bars in the out-of-sample window."""
    folds: int
    start: str
    end: str
    returns: tuple[float, ...]
    """Per-bar simple returns of the out-of-sample equity (for the deflated Sharpe ratio)."""
    train_accuracy: float
    """Hit rate of the last fold's weights on its own training rows (in sample)."""
    test_accuracy: float
    """Hit rate of the weights on every test block (out of sample). A hit: a non-zero weight
    whose sign is the sign of the row's tradable forward return; the gate's stage 3 compares
    the two, as it does a model's accuracies."""
    targets: pd.DataFrame | None = None
    """The sized out-of-sample target weights (``timestamps x symbols``; the champion window
    re-simulates a slice of them)."""
    equity_curve: tuple[tuple[str, float], ...] = ()
    """The window's account value per bar, downsampled like a model's."""


def hit_rate(weights: pd.DataFrame, forward_returns: pd.Series) -> float:
    """Share of non-zero weights whose sign matches the tradable forward return (0: none)."""
    stacked = weights.stack(future_stack=True)
    stacked.index = stacked.index.set_names(["timestamp", "symbol"])
    fwd = forward_returns.reindex(stacked.index).to_numpy(dtype=np.float64)
    w = stacked.to_numpy(dtype=np.float64)
    used = (w != 0.0) & np.isfinite(fwd) & (fwd != 0.0)
    if not used.any():
        return 0.0
    return float((np.sign(w[used]) == np.sign(fwd[used])).mean())


def tradable_forward_returns(
    frames: dict[str, pd.DataFrame], index: pd.MultiIndex, horizon: int
) -> tuple[pd.Series, pd.Series]:
    """``(forward_returns, label_end_times)`` on ``index``: each symbol's
    :func:`~aistock_actors.core.model.labels.tradable_forward_returns` and the timestamp of bar
    ``t+1+h`` (NaN / NaT where the data ends first, or where ``index``
    names a bar or a symbol that ``frames`` does not hold)."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 bar, got {horizon}")
    times = pd.DatetimeIndex(index.get_level_values("timestamp"))
    codes, symbols = pd.factorize(index.get_level_values("symbol"))
    fwd = np.full(len(index), np.nan)
    ends = np.full(len(index), np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    unit_times: pd.DatetimeIndex | None = None
    for code, symbol in enumerate(symbols):
        frame = frames.get(symbol)
        if frame is None:
            continue
        rows = np.flatnonzero(codes == code)
        bar = frame.index.get_indexer(times[rows])  # -1: a bar the frame does not hold
        per_bar = labels.tradable_forward_returns(frame["open"], horizon).to_numpy()
        known = (bar >= 0) & (bar + 1 + horizon < len(frame))
        exit_ = bar[known] + 1 + horizon
        fwd[rows[known]] = per_bar[bar[known]]
        frame_times = pd.DatetimeIndex(frame.index)
        unit_times = frame_times if unit_times is None else unit_times
        ends[rows[known]] = frame_times.as_unit(unit_times.unit).asi8[exit_]
    unit = "ns" if unit_times is None else unit_times.unit
    tz = times.tz if unit_times is None else unit_times.tz
    end_index = pd.DatetimeIndex(ends.view(f"M8[{unit}]"))
    end_index = end_index.tz_localize("UTC").tz_convert(tz) if tz is not None else end_index
    return pd.Series(fwd, index=index), pd.Series(end_index, index=index)


def call_strategy(name: str, what: str, fn: object, *args: object) -> object:
    """``fn(*args)``; whatever it raises becomes a :class:`StrategyError` naming the strategy."""
    try:
        return fn(*args)  # type: ignore[operator]
    except AutopilotError:
        raise
    except Exception as exc:  # a user strategy may raise anything: name it, keep the cause
        raise StrategyError(f"strategy {name!r}: {what} raised {exc!r}") from exc


def strategy_name(strategy: object) -> str:
    """The strategy's ``name`` attribute, else its class name."""
    name = getattr(strategy, "name", None)
    return name if isinstance(name, str) and name else type(strategy).__name__


def checked_features(
    name: str, strategy: Strategy, frames: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """``strategy.features(frames)``, sorted, or a :class:`StrategyError` naming it (a missing
    method, a bad horizon, features not indexed by ``(timestamp, symbol)``)."""
    missing = missing_methods(strategy)
    if missing:
        raise StrategyError(f"strategy {name!r}: missing method(s) {missing}")
    horizon = getattr(strategy, "horizon", None)
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise StrategyError(f"strategy {name!r}: horizon must be an int >= 1, got {horizon!r}")
    features = call_strategy(name, "features()", strategy.features, frames)
    if not isinstance(features, pd.DataFrame) or not isinstance(features.index, pd.MultiIndex):
        raise StrategyError(
            f"strategy {name!r}: features() must return a DataFrame indexed by "
            "(timestamp, symbol)"
        )
    return features.sort_index()


def fit_on_all(frames: dict[str, pd.DataFrame], strategy: Strategy) -> object:
    """Fit ``strategy`` on every row of ``frames`` whose tradable forward return is known (the
    artifact a cycle stores); whatever it raises becomes a :class:`StrategyError` naming it."""
    name = strategy_name(strategy)
    features = checked_features(name, strategy, frames)
    index = features.index
    assert isinstance(index, pd.MultiIndex)
    fwd, ends = tradable_forward_returns(frames, index, strategy.horizon)
    rows = (ends.notna() & np.isfinite(fwd)).to_numpy()
    return call_strategy(name, "fit()", strategy.fit, features[rows], fwd[rows])


def latest_weights(
    frames: dict[str, pd.DataFrame], strategy: Strategy, state: object
) -> dict[str, float]:
    """The strategy's checked weights (fractions of a full position) at the newest bar time of
    ``frames``, per symbol; symbols without a weight there are flat."""
    name = strategy_name(strategy)
    features = checked_features(name, strategy, frames)
    raw = call_strategy(name, "weights()", strategy.weights, features, state)
    weights = check_weights(name, raw)
    if weights.empty:
        return {}
    last = weights.sort_index().iloc[-1]
    return {str(symbol): float(w) for symbol, w in last.items() if str(symbol) in frames}


@dataclass(frozen=True, kw_only=True)
class PreparedStrategy:
    """What a strategy's folds share: its causal features, the tradable forward returns and the
    purged, embargoed splits (computed once, before any fold is fitted)."""

    name: str
    strategy: Strategy
    features: pd.DataFrame
    forward_returns: pd.Series
    splits: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]
    """Per fold: the training rows (purged, embargoed, with a known forward return) and the
    test block's rows."""


def prepare_strategy(
    frames: dict[str, pd.DataFrame],
    strategy: Strategy,
    spec: SimulationSpec,
    features: pd.DataFrame | None = None,
) -> PreparedStrategy:
    """``strategy``'s features (or the already checked ``features`` it shares with another
    candidate), forward returns and splits; a :class:`StrategyError` naming it."""
    name = strategy_name(strategy)
    features = checked_features(name, strategy, frames) if features is None else features
    index = features.index
    assert isinstance(index, pd.MultiIndex)
    fwd, ends = tradable_forward_returns(frames, index, strategy.horizon)
    times = pd.DatetimeIndex(index.get_level_values(0))
    beyond = times.max() + pd.Timedelta(1, "ns")
    usable = ends.notna().to_numpy() & np.isfinite(fwd.to_numpy())
    end_times = pd.DatetimeIndex(ends.where(ends.notna(), beyond))
    splits = [
        (train[usable[train]], test)
        for train, test in purged_walk_forward_splits(times, end_times, spec.n_splits,
                                                      spec.embargo)
    ]
    return PreparedStrategy(name=name, strategy=strategy, features=features,
                            forward_returns=fwd, splits=splits)


class FoldWeights(NamedTuple):
    """One fold's checked weights on its test block (and, for the last fold, on its own
    training rows: the in-sample hit rate)."""

    block: pd.DataFrame
    in_sample: pd.DataFrame | None


def fold_weights(
    name: str,
    strategy: Strategy,
    features: pd.DataFrame,
    forward_returns: pd.Series,
    train: npt.NDArray[np.int64],
    test: npt.NDArray[np.int64],
    in_sample: bool,
) -> FoldWeights | str:
    """Fit on rows ``train`` only and weigh the test block (a pool job; ``features`` and
    ``forward_returns`` are shared by every fold of a batch, read-only). A strategy's error is
    returned as its one-line message, so one bad candidate does not fail the batch."""
    try:
        state = call_strategy(name, "fit()", strategy.fit, features.iloc[train],
                              forward_returns.iloc[train])
        raw = call_strategy(name, "weights()", strategy.weights, features.iloc[test], state)
        block = check_weights(name, raw)
        test_times = pd.DatetimeIndex(features.index.get_level_values(0)[test]).unique()
        inside = None
        if in_sample:
            inside = check_weights(name, call_strategy(
                name, "weights()", strategy.weights, features.iloc[train], state))
        return FoldWeights(block.reindex(index=test_times).fillna(0.0), inside)
    except StrategyError as exc:
        return str(exc)


def fold_jobs(prepared: PreparedStrategy) -> list[tuple[Any, ...]]:
    """One :func:`fold_weights` job per fold of ``prepared``, in fold order."""
    last = len(prepared.splits) - 1
    return [
        (prepared.name, prepared.strategy, prepared.features, prepared.forward_returns,
         train, test, k == last)
        for k, (train, test) in enumerate(prepared.splits)
    ]


def assemble_report(
    frames: dict[str, pd.DataFrame],
    prepared: PreparedStrategy,
    folds: Sequence[FoldWeights | str],
    *,
    spec: SimulationSpec,
    sizing: Sizing,
) -> StrategyReport:
    """The report of ``prepared`` from its folds' weights (fold order): sized, simulated over
    the concatenated test blocks; the first fold's error raised as a :class:`StrategyError`."""
    for fold in folds:
        if isinstance(fold, str):
            raise StrategyError(fold)
    done = [f for f in folds if isinstance(f, FoldWeights)]
    in_sample = done[-1].in_sample
    assert in_sample is not None
    per_name = per_name_weight(len(frames), sizing.max_position_fraction,
                               sizing.max_gross_exposure)
    oos = pd.concat([f.block for f in done]).sort_index()
    targets = (oos * per_name).reindex(columns=sorted(frames)).fillna(0.0)
    window = (pd.Timestamp(targets.index.min()), pd.Timestamp(targets.index.max()))
    result = simulate_window(frames, targets, window, spec)
    fwd = prepared.forward_returns
    return StrategyReport(
        name=prepared.name,
        metrics=result.metrics,
        bars=len(result.equity),
        folds=len(done),
        start=window[0].isoformat(),
        end=window[1].isoformat(),
        returns=tuple(float(r) for r in result.returns),
        train_accuracy=hit_rate(in_sample, fwd),
        test_accuracy=hit_rate(oos, fwd),
        targets=targets,
        equity_curve=tuple(downsample_curve(result.index, result.equity)),
    )


def _sequential(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], /) -> list[R]:
    return [fn(*job) for job in jobs]


def walk_forward_strategy(
    frames: dict[str, pd.DataFrame],
    strategy: Strategy,
    *,
    spec: SimulationSpec,
    sizing: Sizing,
    mapper: Callable[..., list[Any]] = _sequential,
) -> StrategyReport:
    """Walk-forward out-of-sample test of ``strategy`` (see the module docstring); its folds are
    independent jobs of ``mapper``."""
    prepared = prepare_strategy(frames, strategy, spec)
    folds = mapper(fold_weights, fold_jobs(prepared))
    return assemble_report(frames, prepared, folds, spec=spec, sizing=sizing)
