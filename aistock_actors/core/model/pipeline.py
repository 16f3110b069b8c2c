"""The model lifecycle's pure pipeline: select data, train a candidate, backtest it walk-forward.

**Data.** :func:`select_frames` keeps at most ``max_symbols`` symbols (those with the most bars,
ties by name) and each symbol's most recent ``max_bars`` bars. The Trainer and the Backtester
both call it on the same bar store, so they see the same data.

**Training.** :func:`train_candidate` builds direction labels over ``params.horizon`` bars
(:func:`~aistock_actors.core.model.labels.build_training_set`) and fits
:func:`~aistock_actors.core.model.models.train_model` (primary model + meta-labeler whose confidence
threshold is tuned on purged out-of-fold predictions) on ALL the selected data; its independent
fits are jobs of a ``mapper`` (the Trainer's process pool), which does not change the model. The
Trainer's training set is handed over to the Backtester's :func:`make_training_set` when the bars
are the same (content hash), instead of being built twice.

**Walk-forward out-of-sample backtest** (:func:`walk_forward_backtest`). The candidate artifact
was fitted on all the data, so it cannot be scored out of sample on that data; what is scored is
its *recipe* (its ``ModelParams`` and seed) refitted fold by fold:

1. The training set's sample times are cut by
   :func:`~aistock_actors.core.model.validation.purged_walk_forward_splits` into ``n_splits + 1``
   contiguous blocks; fold ``k`` trains on every earlier sample (an expanding window) whose label
   window ends at least ``embargo`` bars before block ``k`` starts (purge + embargo), and tests
   on block ``k``. Folds are independent jobs, run through ``mapper`` (a process pool), the
   largest training window first; every fold job gets the SAME training-set object plus its row
   positions, so a pool sends the panel to each worker once instead of a copy per fold.
2. Each fold's model emits signals on its test block with ITS OWN stored confidence threshold
   (:meth:`~aistock_actors.core.model.models.TrainedModel.signals`, T6): +1 long, -1 short, 0 none.
3. **Sizing** (:func:`~aistock_actors.core.model.simulation.target_weights`): every signalled
   symbol holds the same fixed weight, ``direction * min(max_position_fraction, max_gross_exposure
   / n)`` with ``n`` the number of symbols in the universe
   (:func:`~aistock_actors.core.strategy.protocol.per_name_weight`, the paper trader's rule too),
   not renormalised over the symbols that happen to have a signal at that bar: a held position is
   never resized because another symbol's signal came or went (those resizes were most of the
   orders and ate the edge). No position exceeds the per-position cap and the gross exposure never
   exceeds ``max_gross_exposure``; with few signals the book is partly in cash. Symbols without a
   signal are flat.
4. The test blocks, concatenated in time order, form one out-of-sample window (every bar from the
   first test bar to the last), simulated by
   :func:`~aistock_actors.core.backtest.simulator.simulate_frame`:
   a target decided at bar ``t``'s close fills at bar ``t+1``'s open (``fill="next_open"``), the
   position is resized only when its target changes, and commission, spread and square-root
   impact costs are charged. Regime labels for the transition drawdown (T2) are computed
   causally on the WHOLE price history and then cut to the window, so the window's first bars
   are not left without a regime.

**Incumbent.** When an incumbent (the active model) is given, the fixed artifact is scored with
the same sizing and costs, for champion/challenger and for the registry's re-evaluation, on the
*champion window* (:class:`ChampionWindow`). The incumbent was fitted on every bar up to its
training end (``incumbent_data_end``, the ``data_end`` the Trainer stored in its metadata), so
most of the candidate's out-of-sample window is usually inside the incumbent's training data,
where its score is flattered. When at least :data:`MIN_CHAMPION_WINDOW_BARS` bars of the window
lie strictly after that training end, the champion window is those bars only: the incumbent is
scored there, and so is the candidate (its walk-forward signals on those bars, simulated from a
flat book at the window's first bar like the incumbent's), so stage 7 compares like with like
and the registry judges the incumbent on data it never saw. With fewer such bars (a recently
trained incumbent), or an unknown training end, the champion window is the whole out-of-sample
window, as before, and its ``note`` says so: the incumbent is then partly in-sample, which can
only flatter it -- a challenger must beat a champion with that advantage, which errs on the side
of not churning models (and a promotion is therefore followed by at least
:data:`MIN_CHAMPION_WINDOW_BARS` bars of that protection). The candidate's own metrics (stages
1-6) are always those of the whole window. A model whose features are not available is reported
as not evaluated (``incumbent_note``) rather than failing the whole backtest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from aistock_actors.core.backtest.curves import downsample_curve
from aistock_actors.core.backtest.simulator import BacktestMetrics, BacktestResult
from aistock_actors.core.model.champion import (
    MIN_CHAMPION_WINDOW_BARS,
    ChampionWindow,
    after_training_end,
    champion_window,
)
from aistock_actors.core.model.handover import CURRENT, OFFERING, TrainingSetHandOver, content_key
from aistock_actors.core.model.history import (
    min_history_bars as min_history_bars,
)
from aistock_actors.core.model.history import (
    select_frames as select_frames,
)
from aistock_actors.core.model.history import (
    window_bounds as window_bounds,
)
from aistock_actors.core.model.labels import TrainingSet, build_training_set
from aistock_actors.core.model.models import ModelParams, TrainedModel, train_model
from aistock_actors.core.model.simulation import (
    SimulationSpec,
    Sizing,
    simulate_window,
    target_weights,
)
from aistock_actors.core.model.validation import purged_walk_forward_splits

log = logging.getLogger(__name__)
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
class OOSEvaluation:
    """One model's out-of-sample simulation."""

    model_id: str
    metrics: BacktestMetrics
    bars: int
    """Bars in the simulated window."""
    equity_curve: tuple[tuple[str, float], ...] = ()
    """The window's account value per bar (ISO-8601 time, value), downsampled to at most
    :data:`~aistock_actors.core.backtest.curves.MAX_CURVE_POINTS` points that keep the first and
    last bar and the exact maximum drawdown
    (:func:`~aistock_actors.core.backtest.curves.downsample_curve`)."""
    returns: tuple[float, ...] = ()
    """Per-bar simple returns of the window's account value (for the deflated Sharpe ratio)."""

    @classmethod
    def of(cls, model_id: str, result: BacktestResult) -> OOSEvaluation:
        """The evaluation of one simulated window."""
        curve = tuple(downsample_curve(result.index, result.equity))
        return cls(model_id=model_id, metrics=result.metrics, bars=len(result.equity),
                   equity_curve=curve, returns=tuple(float(r) for r in result.returns))


@dataclass(frozen=True, kw_only=True)
class WalkForwardReport:
    """The candidate's walk-forward evaluation and, if given, the incumbent's on the champion
    window (module docstring, **Incumbent**)."""

    candidate: OOSEvaluation
    incumbent: OOSEvaluation | None
    """The incumbent on :attr:`champion`'s bars (``None``: not evaluated, or no incumbent)."""
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
    champion: ChampionWindow | None = None
    """Where the incumbent was scored and compared (``None`` when it was not evaluated)."""


# --- data and training ----------------------------------------------------------------------


def make_training_set(frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet:
    """Features and direction labels of every symbol (the seam tests use to plant faults).

    Takes the set the train step handed over for the same bars and horizon (the ``hand_over``
    of :func:`walk_forward_backtest`), else builds it; offers it from :func:`train_candidate`.
    """
    hand_over = CURRENT.get()
    data = hand_over.take(frames, horizon, build_training_set) if hand_over else None
    if data is None:
        data = build_training_set(frames, horizon=horizon)
    else:
        log.info("training set of %d rows taken over from the train step", len(data.features))
    if hand_over is not None and OFFERING.get():
        hand_over.offer(frames, horizon, data, build_training_set)
    return data


def frames_key(frames: dict[str, pd.DataFrame], horizon: int) -> bytes | None:
    """The hand-over key of ``frames`` and ``horizon`` (this module's patchable builder)."""
    return content_key(frames, horizon, build_training_set)


def train_candidate(
    frames: dict[str, pd.DataFrame],
    params: ModelParams,
    seed: int,
    model_id: str,
    created_at: datetime,
    *,
    mapper: Mapper = sequential_map,
    hand_over: TrainingSetHandOver | None = None,
) -> TrainedModel:
    """Train the candidate on all of ``frames``; its fits are jobs of ``mapper``. With a
    ``hand_over`` (the Trainer's) the training set is kept there for the backtest step's
    :func:`make_training_set` (one use)."""
    token, offering = CURRENT.set(hand_over), OFFERING.set(hand_over is not None)
    try:
        data = make_training_set(frames, params.horizon)
    finally:
        CURRENT.reset(token)
        OFFERING.reset(offering)
    try:
        return train_model(
            data.features,
            data.labels,
            data.label_end_times,
            params=params,
            model_id=model_id,
            created_at=created_at,
            seed=seed,
            mapper=mapper,
        )
    except BaseException:
        if hand_over is not None:
            hand_over.clear()  # no backtest follows a failed training: do not keep the set
        raise


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
    return OOSEvaluation.of(model_id, result)


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
    incumbent_data_end: str | None = None,
    mapper: Mapper = sequential_map,
    hand_over: TrainingSetHandOver | None = None,
) -> WalkForwardReport:
    """Walk-forward out-of-sample backtest of a recipe (see the module docstring).

    ``incumbent_data_end`` is the incumbent's training end (ISO-8601; ``None``: unknown, the
    incumbent is then scored on the whole window). The fold fits and the incumbent's signals
    are one batch of independent jobs for ``mapper``; ``hand_over`` may hold the train step's
    training set for these bars.
    """
    token = CURRENT.set(hand_over)
    try:
        data = make_training_set(frames, params.horizon)
    finally:
        CURRENT.reset(token)
    fold_jobs = _fold_jobs(data, params, seed, spec)
    positions = np.sort(np.concatenate([job[4] for job in fold_jobs]))
    index = data.features.index[positions]
    assert isinstance(index, pd.MultiIndex)
    unseen_rows = after_training_end(index, incumbent_data_end)
    unseen = int(pd.Index(index.get_level_values("timestamp")[unseen_rows]).nunique())
    # The champion window: the bars after the incumbent's training end, when there are enough.
    after = unseen >= MIN_CHAMPION_WINDOW_BARS
    rows = unseen_rows if after else np.ones(len(positions), dtype=bool)
    jobs: list[tuple[Any, ...]] = list(fold_jobs)
    if incumbent is not None:
        jobs.append((model_signals, data, incumbent, positions[rows]))
    results = mapper(call, jobs)
    folds: list[FoldSignals] = sorted(results[: len(fold_jobs)], key=lambda f: f.fold)
    direction = np.zeros(len(data.features), dtype=np.int8)
    for fold in folds:
        direction[fold.positions] = fold.direction
    direction = direction[positions]
    candidate = _evaluate(model_id, frames, index, direction, sizing, spec)
    evaluated: OOSEvaluation | None = None
    note: str | None = None
    champion: ChampionWindow | None = None
    if incumbent is not None:
        inc = results[-1]
        if isinstance(inc, str):
            note = inc
        else:
            window = index[rows]
            assert isinstance(window, pd.MultiIndex)
            evaluated = _evaluate(incumbent.model_id, frames, window, inc, sizing, spec)
            challenger = (
                _evaluate(model_id, frames, window, direction[rows], sizing, spec)
                if after and not rows.all()
                else candidate
            )
            champion = champion_window(
                challenger, incumbent.model_id, window, unseen, incumbent_data_end, after
            )
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
        champion=champion,
    )
