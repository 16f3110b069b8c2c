"""The pre-registered candidate set: planted signals at horizons 1, 5 and 20 bars are found and
pass the gate with the deflated Sharpe; a failing candidate is counted and the rest compete; the
demo data's honest figure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from _support.lifecycle_support import planted_frames

from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.data.bars import bars_frame
from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.promotion.gate import (
    CandidateEvaluation,
    PromotionThresholds,
    evaluate_candidate,
)
from aistock_actors.core.strategy.candidates import (
    CandidateSetResult,
    default_candidates,
    run_candidate_set,
)
from aistock_actors.core.strategy.ml import MetaLabelledStrategy, hold_signals, label_end_times
from aistock_actors.core.strategy.rules import SmaCross, close_panel, stack, unstack

SPEC = SimulationSpec(n_splits=4, embargo=5, fill="next_open",
                      costs=CostModel(
                          commission_rate=0.0005,
                          half_spread_bps=2.0,
                          impact_bps=200.0,
                      ),
                      initial_cash=100_000.0)
SIZING = Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)


def trend_frames(mean_duration: int, n_symbols: int, mu: float, seed: int = 1,
                 n_bars: int = 1_000) -> dict[str, pd.DataFrame]:
    """Each symbol drifts by ``+-mu`` a bar; the sign flips with probability 1/mean_duration
    a bar (a signal lasting ``mean_duration`` bars on average); noise sd 1 %."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-02", periods=n_bars, tz="UTC").as_unit("ns")
    frames = {}
    for i in range(n_symbols):
        sign = np.sign(rng.normal())
        returns = np.empty(n_bars)
        for t in range(n_bars):
            if rng.random() < 1.0 / mean_duration:
                sign = -sign
            returns[t] = sign * mu + rng.normal(0.0, 0.01)
        close = np.round(100.0 * np.exp(np.cumsum(returns)), 4)
        open_ = np.concatenate([[100.0], close[:-1]])
        values = np.column_stack([open_, np.maximum(open_, close) * 1.002,
                                  np.minimum(open_, close) * 0.998, close,
                                  np.full(n_bars, 1e6)])
        frames[f"P{i:02d}"] = bars_frame(np.asarray(days.asi8, dtype=np.int64), values)
    return frames


def judged(result: CandidateSetResult) -> tuple[list[str], float]:
    best = result.best
    assert best is not None
    m = best.metrics
    decision = evaluate_candidate(
        CandidateEvaluation(model_id=best.name, sharpe=m.sharpe, max_drawdown=m.max_drawdown,
                            win_rate=m.win_rate, train_accuracy=best.train_accuracy,
                            test_accuracy=best.test_accuracy, total_return=m.total_return,
                            trade_count=m.trade_count,
                            transition_drawdown=m.transition_max_drawdown,
                            deflated_sharpe=result.deflated_sharpe, trials=result.trials),
        PromotionThresholds(),
    )
    return decision.reasons, m.sharpe


@pytest.mark.slow
@pytest.mark.parametrize(
    ("planted", "frames"),
    [
        # phi 0.25, not 0.3: at 0.3 the autocorrelation rule's out-of-sample net Sharpe is 5.26,
        # above promotion.max_plausible_sharpe (5), so the gate rightly holds it for review.
        ("AR(1) phi 0.25: a 1-bar signal", lambda: planted_frames(phi=0.25)),
        ("drift regimes of 5 bars", lambda: trend_frames(5, n_symbols=12, mu=0.006)),
        ("drift regimes of 20 bars", lambda: trend_frames(20, n_symbols=6, mu=0.003)),
    ],
    ids=["horizon-1", "horizon-5", "horizon-20"],
)
def test_planted_signals_are_found_and_pass_every_stage(planted: str, frames: object) -> None:
    result = run_candidate_set(frames(), default_candidates(), spec=SPEC, sizing=SIZING)  # type: ignore[operator]
    reasons, sharpe = judged(result)
    assert result.trials == 6 and result.errors == {}
    assert reasons == [], (planted, sharpe, reasons)
    assert result.deflated_sharpe >= 0.95


@pytest.mark.slow
def test_the_demo_data_figure_is_reported_as_it_is() -> None:
    """20 x 1,500 demo bars, seed 7: the autocorrelation rule is selected with an out-of-sample
    NET Sharpe of 1.90 (issue #14's goal, >= 1.0, is reached; it was 0.87 with the rolling
    40-bar estimator and unit positions) and passes every stage: over the 6 pre-registered
    trials its deflated Sharpe is 0.997 (stage 9 needs 0.95). The rule's design was chosen on
    generator seeds 1-6 only; seed 7 is reported once, as it came out (bench/README.md
    section 11)."""
    result = run_candidate_set(generate_universe(20, 1_500, 7), default_candidates(),
                               spec=SPEC, sizing=SIZING)
    assert result.best is not None and result.best.name == "autocorrelation"
    reasons, sharpe = judged(result)
    assert sharpe == pytest.approx(1.90, abs=0.05)
    assert result.deflated_sharpe == pytest.approx(0.997, abs=0.002)
    assert reasons == []


@dataclass(frozen=True)
class NaNWeights:
    name: str = "nan_weights"
    horizon: int = 1

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return stack({"close": close_panel(frames)})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        return unstack(features, "close") * np.nan


def test_a_failing_candidate_is_counted_named_and_the_rest_still_compete() -> None:
    frames = planted_frames(n_symbols=3, n_bars=400, phi=0.0)
    result = run_candidate_set(frames, [NaNWeights(), SmaCross()], spec=SPEC, sizing=SIZING,
                               previous_trials=7)
    assert list(result.errors) == ["nan_weights"]
    assert "strategy 'nan_weights'" in result.errors["nan_weights"]
    assert [r.name for r in result.reports] == ["sma_cross"]
    assert result.best is not None and result.best.name == "sma_cross"
    assert result.trials == 9  # the failed trial counts too
    with pytest.raises(ValueError, match="empty"):
        run_candidate_set(frames, [], spec=SPEC, sizing=SIZING)


def test_ml_helpers_label_ends_and_holding() -> None:
    times = pd.bdate_range("2020-01-01", periods=5, tz="UTC")
    index = pd.MultiIndex.from_product([times, ["A", "B"]], names=["timestamp", "symbol"])
    ends = label_end_times(index, 2)
    assert ends.loc[(times[0], "A")] == times[3] and pd.isna(ends.loc[(times[2], "B")])
    held = hold_signals(pd.DataFrame({"A": [1.0, 0.0, 0.0, -1.0, 0.0]}), 2)
    assert held["A"].tolist() == [1.0, 1.0, 0.0, -1.0, -1.0]
    assert MetaLabelledStrategy(horizon=20).name == "ml_horizon_20"
