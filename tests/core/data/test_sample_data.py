from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aistock_actors.cli.sample_data import main
from aistock_actors.core.data.bars import FIELDS, bars_frame, parse
from aistock_actors.core.data.sample_data import (
    MEAN_REVERTING,
    TRENDING,
    VOLATILE,
    Universe,
    generate_universe,
    simulate_universe,
    write_universe_csvs,
)


@pytest.fixture(scope="module")
def universe() -> Universe:
    return simulate_universe(12, 2000, seed=11)


def test_same_seed_same_frames_different_seed_different() -> None:
    a, b = generate_universe(3, 300, seed=5), generate_universe(3, 300, seed=5)
    c = generate_universe(3, 300, seed=6)
    assert list(a) == ["SYM000", "SYM001", "SYM002"]
    for symbol in a:
        pd.testing.assert_frame_equal(a[symbol], b[symbol])
    assert not a["SYM000"].equals(c["SYM000"])


def test_frames_are_business_days_utc_and_intraday_consistent() -> None:
    frames = generate_universe(4, 500, seed=1, start="2016-03-01")
    for frame in frames.values():
        index = frame.index
        assert isinstance(index, pd.DatetimeIndex)
        assert str(index.dtype) == "datetime64[ns, UTC]" and index.name == "timestamp"
        assert index[0] == pd.Timestamp("2016-03-01", tz="UTC") and len(frame) == 500
        assert (index.day_of_week < 5).all() and index.is_monotonic_increasing
        assert list(frame.columns) == list(FIELDS) and (frame.dtypes == np.float64).all()
        o, h, lo, c, v = (frame[name].to_numpy() for name in FIELDS)
        assert (lo > 0).all() and (v >= 0).all()
        assert (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()


def test_symbols_share_a_market_factor(universe: Universe) -> None:
    frames = universe.frames
    returns = np.column_stack([np.diff(np.log(f["close"].to_numpy())) for f in frames.values()])
    corr = np.corrcoef(returns.T)[np.triu_indices(returns.shape[1], 1)]
    assert 0.1 < corr.mean() < 0.7


def test_regimes_leave_weak_but_real_structure(universe: Universe) -> None:
    frames, drift = universe.frames, universe.drift_regime
    returns = np.column_stack([np.diff(np.log(f["close"].to_numpy())) for f in frames.values()])
    regime = drift[1:]
    both = {k: (regime[1:] == k) & (regime[:-1] == k) for k in (TRENDING, MEAN_REVERTING)}
    lag = {k: np.corrcoef(returns[:-1][m], returns[1:][m])[0, 1] for k, m in both.items()}
    assert lag[TRENDING] > 0.05 and lag[MEAN_REVERTING] < -0.03
    overall = np.corrcoef(returns[:-1].ravel(), returns[1:].ravel())[0, 1]
    assert abs(overall) < 0.15


def test_regimes_last_tens_to_hundreds_of_bars_and_volume_rises_when_volatile(
    universe: Universe,
) -> None:
    vol, frames = universe.volatility_regime, universe.frames
    switches = np.flatnonzero(np.diff(vol)) + 1
    runs = np.diff(np.concatenate([[0], switches, [len(vol)]]))
    assert 10 <= runs.mean() <= 300
    volume = np.log(np.column_stack([f["volume"].to_numpy() for f in frames.values()]))
    assert volume[vol == VOLATILE].mean() > volume[vol != VOLATILE].mean() + 0.2


def test_written_csvs_parse_back_exactly(tmp_path: Path) -> None:
    frames = generate_universe(3, 250, seed=9)
    paths = write_universe_csvs(tmp_path / "csv", frames)
    assert [p.name for p in paths] == ["SYM000.csv", "SYM001.csv", "SYM002.csv"]
    assert paths[0].read_text().startswith("timestamp,open,high,low,close,volume\n2015-01-02,")
    for path in paths:
        result = parse(path.read_bytes())
        assert result.ok
        pd.testing.assert_frame_equal(
            bars_frame(result.timestamps, result.values), frames[path.stem]
        )


def test_rejects_empty_universe() -> None:
    with pytest.raises(ValueError, match="at least one"):
        generate_universe(0, 10, seed=1)


def test_cli_writes_once_then_refuses_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    assert main(["--out", str(out), "--symbols", "2", "--bars", "30", "--seed", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["SYM000.csv", "SYM001.csv"]
    assert capsys.readouterr().out.strip().startswith("wrote 2 CSV file(s) x 30 bars")
    before = (out / "SYM000.csv").read_bytes()
    assert main(["--out", str(out), "--symbols", "2", "--bars", "40"]) == 0
    assert "unchanged" in capsys.readouterr().out and (out / "SYM000.csv").read_bytes() == before
    assert main(["--out", str(out), "--symbols", "2", "--bars", "40", "--force"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert len(parse((out / "SYM000.csv").read_bytes()).timestamps) == 40


def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path), "--symbols", "0"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--start", "2020-13-01"])
