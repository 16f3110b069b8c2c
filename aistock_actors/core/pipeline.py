"""The model lifecycle's pure pipeline: select data, train a candidate, backtest it walk-forward.

**Data.** :func:`select_frames` keeps at most ``max_symbols`` symbols (those with the most bars,
ties by name) and each symbol's most recent ``max_bars`` bars. The Trainer and the Backtester
both call it on the same bar store, so they see the same data.

**Training.** :func:`train_candidate` builds direction labels over ``params.horizon`` bars
(:func:`~aistock_actors.core.labels.build_training_set`) and fits
:func:`~aistock_actors.core.models.train_model` (primary model + meta-labeler whose confidence
threshold is tuned on purged out-of-fold predictions) on ALL the selected data.

**Walk-forward out-of-sample backtest** (:func:`walk_forward_backtest`). The candidate artifact
was fitted on all the data, so it cannot be scored out of sample on that data; what is scored is
its *recipe* (its ``ModelParams`` and seed) refitted fold by fold:

1. The training set's sample times are cut by
   :func:`~aistock_actors.core.validation.purged_walk_forward_splits` into ``n_splits + 1``
   contiguous blocks; fold ``k`` trains on every earlier sample (an expanding window) whose label
   window ends at least ``embargo`` bars before block ``k`` starts (purge + embargo), and tests
   on block ``k``. Folds are independent jobs, run through ``mapper`` (a process pool), the
   largest training window first; every fold job gets the SAME training-set object plus its row
   positions, so a pool sends the panel to each worker once instead of a copy per fold.
2. Each fold's model emits signals on its test block with ITS OWN stored confidence threshold
   (:meth:`~aistock_actors.core.models.TrainedModel.signals`, T6): +1 long, -1 short, 0 none.
3. **Sizing** (:func:`target_weights`): at every bar, the symbols with a signal share the book
   equally: each gets ``direction * min(max_position_fraction, max_gross_exposure / n)``, where
   ``n`` is the number of symbols with a signal at that bar. So no position exceeds the risk
   config's per-position cap and the gross exposure never exceeds ``max_gross_exposure``; with
   few signals the book is partly in cash. Symbols without a signal are flat.
4. The test blocks, concatenated in time order, form one out-of-sample window (every bar from the
   first test bar to the last), simulated by :func:`~aistock_actors.core.backtest.simulate_frame`:
   a target decided at bar ``t``'s close fills at bar ``t+1``'s open (``fill="next_open"``), the
   position is resized only when its target changes, and commission, spread and square-root
   impact costs are charged. Regime labels for the transition drawdown (T2) are computed
   causally on the WHOLE price history and then cut to the window, so the window's first bars
   are not left without a regime.

**Incumbent.** When an incumbent (the active model) is given, the fixed artifact is scored on the
same window with the same sizing and costs, for champion/challenger and for the registry's
re-evaluation. Part of that window may lie inside the incumbent's own training data, which can
only flatter the incumbent: a challenger must beat a champion that had that advantage, which
errs on the side of not churning models. A model whose features are not available is reported
as not evaluated (``incumbent_note``) rather than failing the whole backtest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest import (
    BacktestMetrics,
    BacktestResult,
    CostModel,
    FillMode,
    simulate_frame,
)
from aistock_actors.core.curves import downsample_curve
from aistock_actors.core.features import WARMUP_BARS
from aistock_actors.core.labels import TrainingSet, build_training_set
from aistock_actors.core.models import ModelParams, TrainedModel, train_model
from aistock_actors.core.regimes import market_regimes
from aistock_actors.core.validation import purged_walk_forward_splits
from aistock_actors.errors import DataError

R = TypeVar("R")
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Creation time given to the throw-away fold models (never stored)."""


class Mapper(Protocol):
    """Runs ``fn(*job)`` for each job and returns the results in order (a process pool, or not)."""

    def __call__(self, fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], /) -> list[R]: ...


def sequential_map(fn: Callable[..., R], jobs: Sequence[tuple[Any, ...]], /) -> list[R]:
    """The trivial :class:`Mapper`: one job after another in this thread."""
    return [fn(*job) for job in jobs]


@dataclass(frozen=True, kw_only=True)
class Sizing:
    """How signals become target weights (rule 3 of the module docstring)."""

    max_position_fraction: float
    max_gross_exposure: float


@dataclass(frozen=True, kw_only=True)
class SimulationSpec:
    """The walk-forward split and the simulator's settings."""

    n_splits: int
    """Walk-forward folds (test blocks)."""
    embargo: int
    """Bars between a training label's end and the test block."""
    fill: FillMode
    costs: CostModel
    initial_cash: float


@dataclass(frozen=True, kw_only=True)
class OOSEvaluation:
    """One model's out-of-sample simulation."""

    model_id: str
    metrics: BacktestMetrics
    bars: int
    """Bars in the simulated window."""
    equity_curve: tuple[tuple[str, float], ...] = ()
    """The window's account value per bar (ISO-8601 time, value), downsampled to at most
    :data:`~aistock_actors.core.curves.MAX_CURVE_POINTS` points that keep the first and last
    bar and the exact maximum drawdown (:func:`~aistock_actors.core.curves.downsample_curve`)."""


@dataclass(frozen=True, kw_only=True)
class WalkForwardReport:
    """The candidate's walk-forward evaluation and, if given, the incumbent's on the same bars."""

    candidate: OOSEvaluation
    incumbent: OOSEvaluation | None
    incumbent_note: str | None
    """Why the incumbent was not evaluated (``None`` if it was, or if there is none)."""
    folds: int
    fold_thresholds: list[float]
    """Each fold model's own confidence threshold."""
    signals: int
    """Non-zero candidate signals over the window."""
    start: str
    end: str
    """First and last bar of the out-of-sample window (ISO-8601)."""


# --- data and training ----------------------------------------------------------------------


def select_frames(
    frames: dict[str, pd.DataFrame], *, max_symbols: int, max_bars: int
) -> dict[str, pd.DataFrame]:
    """At most ``max_symbols`` symbols (most bars first, ties by name), last ``max_bars`` each."""
    if not frames:
        raise DataError("no stored bars: nothing to train on")
    ranked = sorted(frames, key=lambda s: (-len(frames[s]), s))[:max_symbols]
    return {symbol: frames[symbol].iloc[-max_bars:] for symbol in sorted(ranked)}


def min_history_bars(params: ModelParams, outer_splits: int) -> int:
    """Bars the longest symbol needs before a candidate can be trained AND backtested.

    Each of the ``outer_splits + 1`` walk-forward blocks must hold enough labelled bars for the
    first fold's own inner purged splits (``params.n_splits + 1`` blocks, each longer than the
    embargo plus the label horizon), on top of the features' warm-up. With the defaults
    (horizon 5, embargo 5, 5 inner and 4 outer splits) that is 495 bars, about two years of
    daily data.
    """
    gap = params.embargo + params.horizon
    inner = (params.n_splits + 1) * (gap + 2)
    return WARMUP_BARS + params.horizon + (outer_splits + 1) * (inner + gap)


def make_training_set(frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet:
    """Features and direction labels of every symbol (the seam tests use to plant faults)."""
    return build_training_set(frames, horizon=horizon)


def train_candidate(
    frames: dict[str, pd.DataFrame],
    params: ModelParams,
    seed: int,
    model_id: str,
    created_at: datetime,
) -> TrainedModel:
    """Train the candidate on all of ``frames`` (run in a worker process by the Trainer)."""
    data = make_training_set(frames, params.horizon)
    return train_model(
        data.features,
        data.labels,
        data.label_end_times,
        params=params,
        model_id=model_id,
        created_at=created_at,
        seed=seed,
    )


def window_bounds(frames: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """First and last timestamp over all frames, ISO-8601."""
    starts = [f.index[0] for f in frames.values() if len(f)]
    ends = [f.index[-1] for f in frames.values() if len(f)]
    if not starts:
        raise DataError("every selected symbol is empty")
    return pd.Timestamp(min(starts)).isoformat(), pd.Timestamp(max(ends)).isoformat()


# --- jobs run in the pool -------------------------------------------------------------------


class FoldSignals(NamedTuple):
    """One fold's test-block signals."""

    fold: int
    positions: IntArray
    """Row positions (into the training set) of the test block."""
    direction: Int8Array
    threshold: float


def fit_fold(
    data: TrainingSet,
    fold: int,
    train: IntArray,
    test: IntArray,
    params: ModelParams,
    seed: int,
) -> FoldSignals:
    """Fit the recipe on one fold's training rows and signal its test rows (a pool job).

    ``data`` is the whole training set, shared by every fold of the batch (sent to each worker
    once, read-only); ``train`` and ``test`` are row positions into it.
    """
    model = train_model(
        data.features.iloc[_rows(train)],
        data.labels.iloc[_rows(train)],
        data.label_end_times.iloc[_rows(train)],
        params=params,
        model_id=f"fold-{fold}",
        created_at=_EPOCH,
        seed=seed,
    )
    signals = model.signals(data.features.iloc[_rows(test)])
    return FoldSignals(fold, test, signals.direction, model.confidence_threshold)


def model_signals(data: TrainingSet, model: TrainedModel, positions: IntArray) -> Int8Array | str:
    """A fixed model's signals on rows ``positions`` of ``data``, or why it cannot produce them
    (a pool job)."""
    try:
        return model.signals(data.features.iloc[_rows(positions)]).direction
    except ValueError as exc:
        return f"incumbent {model.model_id} not evaluated: {exc}"


def _rows(positions: IntArray) -> IntArray | slice:
    """``positions`` as a slice when they are consecutive (a view, not a copy, of the rows)."""
    n = len(positions)
    if n and int(positions[-1]) - int(positions[0]) == n - 1 and (np.diff(positions) == 1).all():
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return positions


# --- sizing and simulation ------------------------------------------------------------------


def target_weights(index: pd.MultiIndex, direction: Int8Array, sizing: Sizing) -> pd.DataFrame:
    """Equal-weight, capped target weights (rule 3), as a ``timestamps x symbols`` frame."""
    signal = pd.Series(np.asarray(direction, dtype=np.float64), index=index)
    counts = (signal != 0).groupby(level="timestamp").transform("sum").to_numpy(dtype=float)
    per_name = np.minimum(
        sizing.max_position_fraction, sizing.max_gross_exposure / np.maximum(counts, 1.0)
    )
    weights = pd.Series(signal.to_numpy() * np.minimum(per_name, 1.0), index=index)
    return weights.unstack("symbol").fillna(0.0)


def _panel(frames: dict[str, pd.DataFrame], column: str) -> pd.DataFrame:
    return pd.DataFrame({symbol: frame[column] for symbol, frame in frames.items()}).sort_index()


def simulate_window(
    frames: dict[str, pd.DataFrame],
    targets: pd.DataFrame,
    window: tuple[pd.Timestamp, pd.Timestamp],
    spec: SimulationSpec,
) -> BacktestResult:
    """Simulate ``targets`` over the bars of ``window`` (rule 4), regimes from all history."""
    close = _panel(frames, "close")
    regimes = market_regimes(close.to_numpy(dtype=np.float64, na_value=np.nan))
    inside = (close.index >= window[0]) & (close.index <= window[1])
    return simulate_frame(
        close.loc[inside],
        targets,
        open_=_panel(frames, "open").loc[inside],
        volume=_panel(frames, "volume").loc[inside],
        costs=spec.costs,
        fill=spec.fill,
        initial_cash=spec.initial_cash,
        regime_labels=regimes[inside],
    )


# --- the walk-forward backtest --------------------------------------------------------------


def _fold_jobs(
    data: TrainingSet, params: ModelParams, seed: int, spec: SimulationSpec
) -> list[tuple[Any, ...]]:
    """One :func:`fit_fold` job per walk-forward fold, the biggest training set first (so two
    workers finish together instead of one waiting on the last, largest fold)."""
    times = data.features.index.get_level_values("timestamp")
    splits = purged_walk_forward_splits(times, data.label_end_times, spec.n_splits, spec.embargo)
    jobs = [
        (fit_fold, data, k, train, test, params, seed)
        for k, (train, test) in enumerate(splits, start=1)
    ]
    return sorted(jobs, key=lambda job: -len(job[3]))


def _evaluate(
    model_id: str,
    frames: dict[str, pd.DataFrame],
    index: pd.MultiIndex,
    direction: Int8Array,
    sizing: Sizing,
    spec: SimulationSpec,
) -> OOSEvaluation:
    times = index.get_level_values("timestamp")
    window = (pd.Timestamp(times.min()), pd.Timestamp(times.max()))
    result = simulate_window(frames, target_weights(index, direction, sizing), window, spec)
    return OOSEvaluation(
        model_id=model_id,
        metrics=result.metrics,
        bars=len(result.equity),
        equity_curve=tuple(downsample_curve(result.index, result.equity)),
    )


def call(fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)``: lets one :class:`Mapper` batch mix fold jobs and the incumbent's job."""
    return fn(*args)


def walk_forward_backtest(
    frames: dict[str, pd.DataFrame],
    *,
    model_id: str,
    params: ModelParams,
    seed: int,
    spec: SimulationSpec,
    sizing: Sizing,
    incumbent: TrainedModel | None = None,
    mapper: Mapper = sequential_map,
) -> WalkForwardReport:
    """Walk-forward out-of-sample backtest of a recipe (see the module docstring).

    The fold fits and the incumbent's signals are one batch of independent jobs for ``mapper``.
    """
    data = make_training_set(frames, params.horizon)
    fold_jobs = _fold_jobs(data, params, seed, spec)
    positions = np.sort(np.concatenate([job[4] for job in fold_jobs]))
    jobs: list[tuple[Any, ...]] = list(fold_jobs)
    if incumbent is not None:
        jobs.append((model_signals, data, incumbent, positions))
    results = mapper(call, jobs)
    folds: list[FoldSignals] = sorted(results[: len(fold_jobs)], key=lambda f: f.fold)
    direction = np.zeros(len(data.features), dtype=np.int8)
    for fold in folds:
        direction[fold.positions] = fold.direction
    direction = direction[positions]
    index = data.features.index[positions]
    assert isinstance(index, pd.MultiIndex)
    candidate = _evaluate(model_id, frames, index, direction, sizing, spec)
    evaluated: OOSEvaluation | None = None
    note: str | None = None
    if incumbent is not None:
        inc = results[-1]
        if isinstance(inc, str):
            note = inc
        else:
            evaluated = _evaluate(incumbent.model_id, frames, index, inc, sizing, spec)
    times = index.get_level_values("timestamp")
    return WalkForwardReport(
        candidate=candidate,
        incumbent=evaluated,
        incumbent_note=note,
        folds=len(folds),
        fold_thresholds=[float(f.threshold) for f in folds],
        signals=int(np.count_nonzero(direction)),
        start=pd.Timestamp(times.min()).isoformat(),
        end=pd.Timestamp(times.max()).isoformat(),
    )
