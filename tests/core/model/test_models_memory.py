"""The logistic pipeline is fitted and applied step by step with fewer copies: the SAME model.

``core.model.logistic`` fits ``StandardScaler -> clip_float32 -> LogisticRegression`` without
``Pipeline.fit``'s live copies of the rows (its input, the float64 scaled copy, the float32
clipped copy): the rows are scaled and clipped chunk by chunk into the one float32 copy the
solver reads. These tests pin that the fitted object pickles to the same bytes as
``Pipeline.fit``'s, whatever the input's layout (C, Fortran, a strided row slice, a read-only
memory map from a pool's spill file), that predictions are bit-identical, that the copies are
gone, and that a model stored before the float32 design matrix is applied as it always was.
"""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from aistock_actors.core.model import classifiers, logistic
from aistock_actors.core.model.models import ModelParams
from aistock_actors.runtime import memory

PARAMS = ModelParams()


def _data(rows: int = 6_000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.asfortranarray(rng.normal(size=(rows, 20)) * rng.uniform(0.5, 4.0, 20))
    x[::97, 3] = 40.0  # outliers the clip step has to cut
    y = ((x[:, 0] + rng.normal(size=rows)) > 0).astype(np.int64)
    return x, y


def _layouts(x: np.ndarray, tmp_path: Path) -> dict[str, tuple[np.ndarray, bool]]:
    path = tmp_path / "x.pkl"
    joblib.dump(x, path)
    mapped = joblib.load(path, mmap_mode="r")  # as a pool worker gets a big argument
    rows = np.arange(len(x) // 2, dtype=np.int64)
    return {
        "fortran": (x, False),
        "c": (np.ascontiguousarray(x), False),
        "row slice": (x[: len(x) // 2], False),
        "memory map": (mapped, False),
        "owned copy": (x[rows], True),
    }


def test_the_step_by_step_fit_pickles_to_the_bytes_of_pipeline_fit(tmp_path: Path) -> None:
    x, y = _data(40_000)  # more rows than the scaler adds up at a time
    for name, (rows, owned) in _layouts(x, tmp_path).items():
        target = y[: len(rows)]
        reference = classifiers.make_classifier("logistic", PARAMS, 0)
        reference.fit(np.array(rows, copy=True) if owned else rows, target)
        fitted = classifiers.fit_classifier("logistic", rows, target, PARAMS, 0)
        assert pickle.dumps(fitted) == pickle.dumps(reference), name


def test_predictions_are_bit_identical_and_inputs_untouched(tmp_path: Path) -> None:
    x, y = _data()
    model = classifiers.fit_classifier("logistic", x, y, PARAMS, 0)
    for name, (rows, owned) in _layouts(x, tmp_path).items():
        before = np.array(rows, copy=True)
        expected = model.predict_proba(before)[:, 1]  # float32, from the float32 design matrix
        got = classifiers.positive_proba(model, rows, owned=owned)
        assert got.dtype == np.float64
        assert got.tobytes() == expected.astype(np.float64).tobytes(), name
        if not owned:
            assert np.array_equal(rows, before), name  # only a private copy is overwritten


def test_a_model_stored_before_the_float32_design_matrix_is_applied_as_before(
    tmp_path: Path,
) -> None:
    x, y = _data()
    old = make_pipeline(  # the logistic pipeline of every model stored before this version
        StandardScaler(),
        FunctionTransformer(np.clip, kw_args={"a_min": -6.0, "a_max": 6.0}),
        LogisticRegression(C=PARAMS.regularization_c, max_iter=2000),
    ).fit(x, y)
    path = tmp_path / "old.joblib"
    joblib.dump(old, path)
    stored = joblib.load(path)
    for name, (rows, owned) in _layouts(x, tmp_path).items():
        expected = old.predict_proba(np.array(rows, copy=True))[:, 1]
        got = classifiers.positive_proba(stored, rows, owned=owned)
        assert got.tobytes() == expected.tobytes(), name


@pytest.mark.parametrize("rows", [3, 16_384, 16_385, 50_000])
def test_the_chunked_scaler_gives_the_statistics_of_standard_scaler(
    rows: int, tmp_path: Path
) -> None:
    x, _ = _data(rows)
    reference = StandardScaler().fit(x)
    for name, (layout, _owned) in _layouts(x, tmp_path).items():
        scaler = logistic.ChunkedScaler().fit(layout)
        expected = reference if len(layout) == rows else StandardScaler().fit(layout)
        assert scaler.n_samples_seen_ == expected.n_samples_seen_, name
        np.testing.assert_allclose(scaler.mean_, expected.mean_, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(scaler.var_, expected.var_, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(scaler.scale_, expected.scale_, rtol=1e-12, err_msg=name)


def test_the_chunked_scaler_holds_no_full_size_temporary() -> None:
    x, _ = _data(150_000)
    assert _peak(StandardScaler().fit, x) > 1.0 * x.nbytes  # X - mean, and a NaN mask
    chunk_bytes = logistic._SCALE_CHUNK_ROWS * x.shape[1] * x.itemsize
    assert _peak(logistic.ChunkedScaler().fit, x) < 1.5 * chunk_bytes  # one chunk's temporaries
    with pytest.raises(ValueError):
        logistic.ChunkedScaler().fit(x[:0])  # no rows: the library's own error


def test_the_logistic_fit_reaches_the_regularised_optimum() -> None:
    """The fitted coefficients are the minimum of scikit-learn's L2 objective (mean log loss +
    ||w||^2 / (2 C n)) on the scaled, clipped rows: its gradient there is ~0 in float64, far
    below the 1e-4 at which the L-BFGS solver used before this version stopped."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=(40_000, 1))
    x = base + 0.05 * rng.normal(size=(40_000, 12))  # correlated columns: a flat objective
    y = ((x[:, 0] - x[:, 1] + rng.normal(size=len(x))) > 0).astype(np.int64)
    model = classifiers.fit_classifier("logistic", x, y, PARAMS, 0)
    scaler, _, final = (step for _, step in model.steps)
    xs = np.clip((x - scaler.mean_) / scaler.scale_, -6.0, 6.0)
    w, b = final.coef_[0].astype(np.float64), float(final.intercept_[0])
    p = 1.0 / (1.0 + np.exp(-(xs @ w + b)))
    n = len(y)
    grad = np.r_[xs.T @ (p - y) / n + w / (PARAMS.regularization_c * n), (p - y).mean()]
    assert np.abs(grad).max() < 1e-6


def test_other_classifiers_are_fitted_and_applied_as_before() -> None:
    x, y = _data(3_000)
    hgb = classifiers.fit_classifier("hgb", x, y, PARAMS, 0)
    reference = classifiers.make_classifier("hgb", PARAMS, 0)
    reference.fit(x, y)
    expected = reference.predict_proba(x)[:, 1].tobytes()
    assert classifiers.positive_proba(hgb, x).tobytes() == expected
    assert logistic.scaled_steps(hgb) is None
    single = classifiers.fit_classifier("logistic", x, np.zeros(len(x), np.int64), PARAMS, 0)
    assert np.array_equal(classifiers.positive_proba(single, x), np.zeros(len(x)))  # prior-only


def test_meta_matrix_of_rows_equals_the_stacked_copy() -> None:
    x, _ = _data(5_000)
    rows = np.sort(np.random.default_rng(1).choice(len(x), 3_000, replace=False))
    p_up = np.random.default_rng(2).random(len(rows))
    expected = np.column_stack([x[rows], p_up, np.abs(p_up - 0.5)])
    got = classifiers.meta_matrix(x, p_up, rows)
    assert got.tobytes() == expected.tobytes()
    assert got.flags.c_contiguous and expected.flags.c_contiguous


def test_take_rows_views_consecutive_rows_of_a_c_ordered_array_only() -> None:
    x, _ = _data(1_000)
    c = np.ascontiguousarray(x)
    consecutive = np.arange(100, 400, dtype=np.int64)
    view, owned = classifiers.take_rows(c, consecutive)
    assert not owned and np.shares_memory(view, c) and view.flags.c_contiguous
    assert np.array_equal(view, c[consecutive])
    for array, positions in ((x, consecutive), (c, np.array([1, 5, 6], dtype=np.int64))):
        copy, owned = classifiers.take_rows(array, positions)
        assert owned and not np.shares_memory(copy, array) and copy.flags.c_contiguous
        assert np.array_equal(copy, array[positions])


def _peak(fn: object, *args: object, **kwargs: object) -> int:
    assert callable(fn)
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("c_order", [True, False])
def test_a_logistic_fit_keeps_fewer_copies_than_pipeline_fit(c_order: bool) -> None:
    x, y = _data(150_000)
    rows = np.ascontiguousarray(x) if c_order else x
    nbytes = rows.nbytes
    pipeline_peak = _peak(classifiers.make_classifier("logistic", PARAMS, 0).fit, rows.copy(), y)
    # Pipeline.fit: the float64 scaled copy and the float32 clipped copy live at once
    assert pipeline_peak > 1.4 * nbytes
    peak = _peak(classifiers.fit_classifier, "logistic", rows, y, PARAMS, 0)
    # the float32 copy (0.5x) and the Newton solver's weighted float32 copy of it (0.5x), never
    # a float64 copy of the rows, nor the one-pass scaler's temporary X - mean (1.1x)
    assert peak < 1.2 * nbytes


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_released_pages_leave_the_rss_and_the_data_stays(tmp_path: Path) -> None:
    x = np.asfortranarray(np.random.default_rng(0).random((400_000, 10)))  # 32 MB
    path = tmp_path / "x.pkl"
    joblib.dump(x, path)
    mapped = joblib.load(path, mmap_mode="r")
    view = np.asarray(mapped[:300_000])  # a plain view of the map, as pandas hands it over
    expected = float(mapped.sum())  # reads every page
    before = _rss_kib()
    memory.release_mapped_pages(view)
    assert before - _rss_kib() > 20_000  # most of the 32 MB left this process's RSS
    assert float(mapped.sum()) == expected and np.array_equal(mapped, x)  # read back: same
    memory.release_mapped_pages(x)  # not a memory map: nothing happens
    private = joblib.load(path, mmap_mode="c")  # copy-on-write: never released
    private[0, 0] = -1.0
    memory.release_mapped_pages(private)
    assert private[0, 0] == -1.0
