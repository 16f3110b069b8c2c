"""Fitting less (issue #18): boosted fits stop early on a purged tail of their OWN rows.

The tail is only scored, never fitted on; the head's labels end an embargo before it; and a
walk-forward fold still sees nothing after its test start.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _support.frames_support import ar1_frames
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

from aistock_actors.core.model import classifiers, models, pipeline, threads
from aistock_actors.core.model.labels import TrainingSet, build_training_set
from aistock_actors.core.model.models import ModelParams
from aistock_actors.core.model.validation import as_int_times, purged_tail_split

PARAMS = ModelParams(horizon=1, n_splits=3, embargo=2)


@settings(max_examples=60, deadline=None)
@given(
    n_bars=st.integers(min_value=20, max_value=200),
    n_symbols=st.integers(min_value=1, max_value=4),
    horizon=st.integers(min_value=1, max_value=6),
    fraction=st.floats(min_value=0.05, max_value=0.5),
    embargo=st.integers(min_value=0, max_value=4),
    seed=st.integers(min_value=0, max_value=1_000),
)
def test_the_tail_is_later_than_every_head_label_by_the_embargo(
    n_bars: int, n_symbols: int, horizon: int, fraction: float, embargo: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    start = np.repeat(np.arange(n_bars), n_symbols)
    keep = rng.random(len(start)) > 0.2
    start = start[keep] if keep.any() else start
    end = start + rng.integers(1, horizon + 1, len(start))
    order = rng.permutation(len(start))  # rows need not be sorted
    start, end = start[order], end[order]
    split = purged_tail_split(start, end, fraction, embargo)
    if split is None:
        return
    head, tail = split
    grid = np.unique(start)
    tail_start = start[tail].min()
    # the tail holds every row observed from its first time on: the most recent rows
    assert np.array_equal(tail, np.flatnonzero(start >= tail_start))
    assert len(np.unique(start[tail])) <= int(np.ceil(len(grid) * fraction)) + 1
    # purge + embargo: at least `embargo` grid bars lie strictly between a head label's end
    # and the tail's first time, so no head label knows a tail price
    assert end[head].max() < tail_start
    for label_end in np.unique(end[head]):
        assert np.count_nonzero((grid > label_end) & (grid < tail_start)) >= embargo
    # the head is EVERY row that satisfies that (nothing thrown away beyond the rule)
    cutoff = grid[np.searchsorted(grid, tail_start) - embargo]
    assert np.array_equal(head, np.flatnonzero(end < cutoff))
    assert not set(head.tolist()) & set(tail.tolist())


def test_bad_tail_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="tail fraction"):
        purged_tail_split([1, 2, 3], [2, 3, 4], 1.0)
    with pytest.raises(ValueError, match="embargo"):
        purged_tail_split([1, 2, 3], [2, 3, 4], 0.5, embargo=-1)
    with pytest.raises(ValueError, match="label end times"):
        purged_tail_split([1, 2, 3], [2, 3], 0.5)
    assert purged_tail_split([1, 2, 3], [2, 3, 4], 0.1, embargo=5) is None  # no room for a head


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One OpenMP thread, as every fit in production (two stall on a busy machine)."""
    with threads.one_thread():
        yield


@pytest.fixture(scope="module")
def data() -> TrainingSet:
    return build_training_set(ar1_frames(12, 500, phi=0.3, seed=5), horizon=1, method="direction")


def _arrays(data: TrainingSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(data.features.to_numpy(dtype=float))
    y = data.labels.to_numpy(dtype=np.int64)
    start = as_int_times(data.features.index.get_level_values("timestamp"))
    return x, y, start, as_int_times(data.label_end_times)


def test_an_early_stopped_fit_is_the_head_fit_cut_at_its_iteration(data: TrainingSet) -> None:
    """The tail only chooses WHEN to stop: the trees are those of a fit on the head alone."""
    x, y, start, end = _arrays(data)
    model = classifiers.fit_classifier("hgb", x, y, PARAMS, 3, times=(start, end))
    assert isinstance(model, HistGradientBoostingClassifier)
    assert model.early_stopping is True
    assert 1 <= model.n_iter_ < PARAMS.hgb_max_iter  # it stopped early on this data
    split = purged_tail_split(start, end, classifiers.HGB_TAIL_FRACTION, PARAMS.embargo)
    assert split is not None
    head, tail = split
    assert len(tail) >= classifiers.HGB_MIN_TAIL_ROWS
    reference = HistGradientBoostingClassifier(**{
        **classifiers.make_classifier("hgb", PARAMS, 3).get_params(),  # type: ignore[attr-defined]
        "max_iter": model.n_iter_,
    }).fit(x[head], y[head])
    assert np.array_equal(model.predict_proba(x), reference.predict_proba(x))
    # the tail's labels never reach the trees: flipping them changes at most where it stops
    flipped = y.copy()
    flipped[tail] = 1 - flipped[tail]
    other = classifiers.fit_classifier("hgb", x, flipped, PARAMS, 3, times=(start, end))
    n = min(model.n_iter_, other.n_iter_)  # type: ignore[attr-defined]
    staged = zip(model.staged_predict_proba(x), other.staged_predict_proba(x), strict=False)  # type: ignore[attr-defined]
    for i, (a, b) in enumerate(staged):
        if i >= n:
            break
        assert np.array_equal(a, b)


def test_without_times_or_enough_tail_a_boosted_fit_runs_every_iteration(
    data: TrainingSet,
) -> None:
    x, y, start, end = _arrays(data)
    plain = classifiers.fit_classifier("hgb", x, y, PARAMS, 3)
    assert plain.n_iter_ == PARAMS.hgb_max_iter  # type: ignore[attr-defined]
    rows = np.flatnonzero(start < np.unique(start)[60])  # a tail of 6 bars x 12 symbols < 500
    small = classifiers.fit_classifier(
        "hgb", x[rows], y[rows], PARAMS, 3, times=(start[rows], end[rows])
    )
    assert small.n_iter_ == PARAMS.hgb_max_iter  # type: ignore[attr-defined]


def test_bin_thresholds_come_from_a_bounded_sample_of_the_fit_own_head_rows(
    data: TrainingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thresholds are those of a seeded sample of the head rows alone: no tail row, no row
    the fit was not given, and at most ``HGB_BIN_SUBSAMPLE_ROWS`` of them."""
    monkeypatch.setattr(classifiers, "HGB_BIN_SUBSAMPLE_ROWS", 1_000)
    x, y, start, end = _arrays(data)
    model = classifiers.fit_classifier("hgb", x, y, PARAMS, 3, times=(start, end))
    assert isinstance(model, classifiers.BoundedBinsBooster)
    split = purged_tail_split(start, end, classifiers.HGB_TAIL_FRACTION, PARAMS.embargo)
    assert split is not None
    head, tail = split
    assert len(head) > 1_000
    mapper = model._bin_mapper
    assert mapper.subsample == 1_000
    again = _BinMapper(n_bins=mapper.n_bins, subsample=1_000, random_state=model._random_seed)
    again.fit(x[head])
    for ours, theirs in zip(mapper.bin_thresholds_, again.bin_thresholds_, strict=True):
        assert np.array_equal(ours, theirs)
    # a different sample bound gives different thresholds: the check can fail
    full = _BinMapper(n_bins=mapper.n_bins, random_state=model._random_seed).fit(x[head])
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(mapper.bin_thresholds_, full.bin_thresholds_, strict=True)
    )
    # and scrambling the tail's features (only scored) leaves the thresholds alone
    scrambled = x.copy()
    scrambled[tail] = np.random.default_rng(1).normal(size=(len(tail), x.shape[1]))
    other = classifiers.fit_classifier("hgb", scrambled, y, PARAMS, 3, times=(start, end))
    for a, b in zip(mapper.bin_thresholds_, other._bin_mapper.bin_thresholds_, strict=True):  # type: ignore[attr-defined]
        assert np.array_equal(a, b)


def test_a_batch_bins_once_from_rows_every_one_of_its_fits_trains_on(
    data: TrainingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared bins: the thresholds are a sample of the rows in EVERY fit's purged head (the
    threshold-tuning fits' and the final fit's), so no fit's binning sees a row it does not
    train on; a fit on the shared bins splits on those thresholds."""
    monkeypatch.setattr(classifiers, "HGB_MIN_TAIL_ROWS", 50)
    monkeypatch.setattr(classifiers, "HGB_MIN_SHARED_BIN_ROWS", 100)
    monkeypatch.setattr(classifiers, "HGB_BIN_SUBSAMPLE_ROWS", 700)
    x, y, start, end = _arrays(data)
    splits = pipeline.purged_walk_forward_splits(start, end, 2, PARAMS.embargo)
    fits = [np.arange(len(y)), *(train for train, _ in splits)]
    bins = classifiers.shared_bins(x, y, fits, (start, end), PARAMS, 3)
    assert bins is not None
    heads = []
    for rows in fits:
        split = purged_tail_split(start[rows], end[rows], classifiers.HGB_TAIL_FRACTION,
                                  PARAMS.embargo)
        assert split is not None
        heads.append(set(rows[split[0]].tolist()))
    common = np.array(sorted(set.intersection(*heads)))
    assert len(common) > 700
    sample = common[np.random.default_rng(3).choice(len(common), 700, replace=True)]
    again = _BinMapper(n_bins=256, subsample=None, random_state=3).fit(x[sample])
    for ours, theirs in zip(bins.mapper.bin_thresholds_, again.bin_thresholds_, strict=True):
        assert np.array_equal(ours, theirs)
    assert np.array_equal(bins.binned, again.transform(x))
    # scramble every row outside that common head: the thresholds do not move
    outside = np.setdiff1d(np.arange(len(y)), common)
    scrambled = x.copy()
    scrambled[outside] = np.random.default_rng(2).normal(size=(len(outside), x.shape[1]))
    other = classifiers.shared_bins(scrambled, y, fits, (start, end), PARAMS, 3)
    assert other is not None
    for a, b in zip(bins.mapper.bin_thresholds_, other.mapper.bin_thresholds_, strict=True):
        assert np.array_equal(a, b)
    # the fit on shared bins splits on their thresholds: a row's prediction depends only on
    # its bins (each value replaced by a representative of its bin predicts the same)
    train = splits[1][0]
    model = classifiers.fit_classifier("hgb", x[train], y[train], PARAMS, 3,
                                       times=(start[train], end[train]),
                                       binned=(bins.mapper, bins.binned[train]))
    assert isinstance(model, classifiers.BoundedBinsBooster)
    assert model._bin_mapper is bins.mapper and not hasattr(model, "_shared")
    representative = np.column_stack([
        np.append(thresholds, thresholds[-1] + 1.0)[column]
        for thresholds, column in zip(bins.mapper.bin_thresholds_, bins.binned.T, strict=True)
    ])
    assert not np.array_equal(representative, x)
    assert np.array_equal(model.predict_proba(x), model.predict_proba(representative))
    # too few common rows: every fit bins its own rows
    assert classifiers.shared_bins(x, y, [np.arange(400)], (start, end), PARAMS, 3) is None


def _fold(data: TrainingSet, k: int) -> tuple[np.ndarray, np.ndarray]:
    times = data.features.index.get_level_values("timestamp")
    splits = pipeline.purged_walk_forward_splits(times, data.label_end_times, 3, PARAMS.embargo)
    return splits[k]


def test_a_fold_sees_nothing_after_its_test_start(
    data: TrainingSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scramble every label from the fold's test start on and every feature after its test
    block: the fold's threshold and signals do not move (the early-stopping tail lies inside
    the fold's training rows)."""
    monkeypatch.setattr(classifiers, "HGB_MIN_TAIL_ROWS", 50)  # small data: stop early anyway
    monkeypatch.setattr(classifiers, "HGB_BIN_SUBSAMPLE_ROWS", 700)  # and bin from a sample
    monkeypatch.setattr(classifiers, "HGB_MIN_SHARED_BIN_ROWS", 100)  # shared by the batch
    shared: list[object] = []
    real_bins = models.shared_bins

    def recording(*args: Any, **kwargs: Any) -> Any:
        bins = real_bins(*args, **kwargs)
        shared.append(bins)
        return bins

    monkeypatch.setattr(models, "shared_bins", recording)
    stopped: list[int] = []
    real = classifiers.fit_early_stopped

    def counting(*args: Any, **kwargs: Any) -> Any:
        model = real(*args, **kwargs)
        stopped.extend([] if model is None else [model.n_iter_])
        return model

    monkeypatch.setattr(classifiers, "fit_early_stopped", counting)
    train, test = _fold(data, 1)
    times = pd.DatetimeIndex(data.features.index.get_level_values("timestamp"))
    test_start, test_end = times[test].min(), times[test].max()
    before = pipeline.fit_fold(data, 2, train, test, PARAMS, 0)
    assert len(stopped) == 3  # the meta-labeler's two tuning fits and its final fit
    assert len(shared) == 1 and shared[0] is not None  # the meta batch binned its rows once
    rng = np.random.default_rng(0)
    labels = data.labels.copy()
    later = np.flatnonzero(times >= test_start)
    labels.iloc[later] = rng.integers(0, 2, len(later))
    features = data.features.copy()
    after = np.flatnonzero(times > test_end)
    features.iloc[after] = rng.normal(size=(len(after), features.shape[1]))
    ends = data.label_end_times.copy()
    poisoned = data._replace(features=features, labels=labels, label_end_times=ends)
    again = pipeline.fit_fold(poisoned, 2, train, test, PARAMS, 0)
    assert again.threshold == before.threshold
    assert np.array_equal(again.direction, before.direction)
    # and the check can fail: scrambling the fold's own training labels does move the model
    labels = data.labels.copy()
    labels.iloc[train] = rng.integers(0, 2, len(train))
    moved = pipeline.fit_fold(
        data._replace(labels=labels),
        2, train, test, PARAMS, 0,
    )
    assert not np.array_equal(moved.direction, before.direction)


def test_a_fit_on_shared_bins_copies_only_the_bins_not_its_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The float rows only pass scikit-learn's checks (a view is not copied): the fit's peak
    allocation is the uint8 bins and the boosting's per-row arrays, well under one float copy
    of its rows (converting the bins to floats, as ``fit(binned_rows)`` would, is a full one)."""
    monkeypatch.setattr(classifiers, "HGB_MIN_TAIL_ROWS", 50)
    rng = np.random.default_rng(4)
    n, width = 40_000, 30
    x = rng.normal(size=(n, width))
    y = (x[:, 0] + rng.normal(size=n) > 0).astype(np.int64)
    start = np.repeat(np.arange(n // 20), 20).astype(np.int64)
    times = (start, start + 1)
    bins = classifiers.shared_bins(x, y, [np.arange(n)], times, PARAMS, 0)
    assert bins is not None
    tracemalloc.start()
    try:
        model = classifiers.fit_classifier("hgb", x, y, PARAMS, 0, times=times,
                                           binned=(bins.mapper, bins.binned))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(model, classifiers.BoundedBinsBooster) and model.n_iter_ >= 1
    assert peak < 0.75 * x.nbytes, (peak, x.nbytes)  # ~0.49 here; fitting the bins as floats: ~1.4
