"""Strategies through the walk-forward test: the demo's edge found after costs, noise never
passing, a look-ahead leak held, bad strategies refused with their name, purging respected."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from _support.frames_support import ar1_frames
from _support.lifecycle_support import planted_frames

from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.promotion.gate import (
    LEAK_SUSPECTED,
    CandidateEvaluation,
    PromotionThresholds,
    decide_action,
    evaluate_candidate,
)
from aistock_actors.core.strategy.rules import (
    AutocorrelationStrategy,
    SmaCross,
    TimeSeriesMomentum,
    close_panel,
    stack,
    unstack,
)
from aistock_actors.core.strategy.selection import best_index, deflated_sharpe_ratio
from aistock_actors.core.strategy.walkforward import StrategyReport, walk_forward_strategy
from aistock_actors.errors import StrategyError

SPEC = SimulationSpec(
    n_splits=4,
    embargo=5,
    fill="next_open",
    costs=CostModel(commission_rate=0.0005, half_spread_bps=2.0, impact_bps=200.0),
    initial_cash=100_000.0,
)
"""The config's default backtest costs and splits."""
SIZING = Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)


def evaluation(report: StrategyReport) -> CandidateEvaluation:
    m = report.metrics
    return CandidateEvaluation(
        model_id=report.name,
        sharpe=m.sharpe,
        max_drawdown=m.max_drawdown,
        win_rate=m.win_rate,
        train_accuracy=report.train_accuracy,
        test_accuracy=report.test_accuracy,
        total_return=m.total_return,
        trade_count=m.trade_count,
        transition_drawdown=m.transition_max_drawdown,
    )


def test_the_autocorrelation_rule_finds_the_demo_signal_after_costs() -> None:
    """The demo data (20 x 1,500, seed 7): out-of-sample NET Sharpe 1.90 (issue #14's goal is
    1.0; the rule's design was chosen on seeds 1-6, this is seed 7 as it came out, see
    bench/README.md section 11) and the default gate passes it."""
    frames = generate_universe(20, 1_500, 7)
    report = walk_forward_strategy(frames, AutocorrelationStrategy(), spec=SPEC, sizing=SIZING)
    assert report.metrics.sharpe == pytest.approx(1.90, abs=0.05)
    assert report.metrics.total_costs > 0.0
    assert report.metrics.bars_per_year == pytest.approx(261.0, rel=0.01)
    decision = evaluate_candidate(evaluation(report), PromotionThresholds())
    assert decision.approved, decision.reasons


def random_walks(seed: int) -> dict[str, pd.DataFrame]:
    return ar1_frames(n_symbols=8, n_bars=500, phi=0.0, seed=seed)


def test_twenty_random_walk_seeds_promote_nothing() -> None:
    """The best of the built-in rules on pure noise never passes the gate plus the deflated
    Sharpe ratio at 95 % (3 trials per seed)."""
    promoted = []
    for seed in range(20):
        frames = random_walks(1_000 + seed)
        reports = [
            walk_forward_strategy(frames, s, spec=SPEC, sizing=SIZING)
            for s in (AutocorrelationStrategy(), TimeSeriesMomentum(), SmaCross())
        ]
        best = reports[best_index([r.metrics.sharpe for r in reports])]
        passes = evaluate_candidate(evaluation(best), PromotionThresholds()).approved
        if passes and deflated_sharpe_ratio(best.returns, n_trials=3) >= 0.95:
            promoted.append(seed)
    assert promoted == []


@dataclass(frozen=True)
class LookAhead:
    """A broken strategy: its feature is the NEXT bar's return (a one-bar leak)."""

    name: str = "look_ahead"
    horizon: int = 1

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        log_open = pd.DataFrame({s: np.log(f["open"]) for s, f in frames.items()})
        return stack({"next": log_open.shift(-2) - log_open.shift(-1)})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        return pd.DataFrame(np.sign(unstack(features, "next")).fillna(0.0))


def test_a_strategy_that_sees_one_bar_ahead_is_held_as_leak_suspected() -> None:
    frames = generate_universe(10, 600, 3)
    report = walk_forward_strategy(frames, LookAhead(), spec=SPEC, sizing=SIZING)
    assert report.metrics.sharpe > 5.0
    decision = evaluate_candidate(evaluation(report), PromotionThresholds())
    assert LEAK_SUSPECTED in decision.reasons
    assert decide_action(decision, "headless", True) == "hold"


def test_a_planted_signal_beyond_the_plausibility_ceiling_is_held_not_promoted() -> None:
    """Planted AR(1) phi 0.3 (every symbol, every bar): the autocorrelation rule scores an
    out-of-sample net Sharpe of 5.26, above promotion.max_plausible_sharpe (5), so the gate
    holds it for review; the candidate-set test plants phi 0.25 to show one promoted."""
    report = walk_forward_strategy(planted_frames(phi=0.3), AutocorrelationStrategy(),
                                   spec=SPEC, sizing=SIZING)
    assert report.metrics.sharpe == pytest.approx(5.26, abs=0.05)
    decision = evaluate_candidate(evaluation(report), PromotionThresholds())
    assert decision.reasons == [LEAK_SUSPECTED]


@dataclass
class Recorder:
    """Records what each fit saw; weights are flat."""

    name: str = "recorder"
    horizon: int = 5
    seen: list[tuple[pd.Timestamp, int]] = field(default_factory=list)

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return stack({"close": close_panel(frames)})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> int:
        last = pd.Timestamp(features.index.get_level_values("timestamp").max())
        self.seen.append((last, int(forward_returns.isna().sum())))
        return len(features)

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        assert isinstance(state, int) and state > 0
        return unstack(features, "close") * 0.0


def test_fit_sees_only_purged_rows_with_known_forward_returns() -> None:
    frames = ar1_frames(n_symbols=3, n_bars=400, phi=0.0, seed=5)
    strategy = Recorder()
    report = walk_forward_strategy(frames, strategy, spec=SPEC, sizing=SIZING)
    days = next(iter(frames.values())).index
    blocks = np.linspace(0, len(days), SPEC.n_splits + 2).astype(int)
    assert report.folds == len(strategy.seen) - 0 == SPEC.n_splits
    for k, (last, unknown) in enumerate(strategy.seen, start=1):
        test_start = blocks[k]
        # The label of the last training row ends (1 + horizon bars later) before the embargo.
        last_pos = days.get_loc(last)
        assert last_pos + 1 + strategy.horizon < test_start - SPEC.embargo
        assert unknown == 0
    assert report.metrics.trade_count == 0


@dataclass(frozen=True)
class Broken:
    """A strategy broken in one chosen way."""

    how: str
    name: str = "broken"
    horizon: int = 1

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        if self.how == "features_raise":
            raise KeyError("no such column")
        if self.how == "features_flat":
            return close_panel(frames)
        return stack({"close": close_panel(frames)})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        if self.how == "fit_raises":
            raise ZeroDivisionError("boom")

    def weights(self, features: pd.DataFrame, state: object) -> object:
        close = unstack(features, "close")
        match self.how:
            case "nan":
                return close * np.nan
            case "inf":
                return close * np.inf
            case "too_big":
                return close * 0.0 + 1.5
            case "not_a_frame":
                return [1.0]
            case _:
                return close * 0.0


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("features_raise", r"strategy 'broken': features\(\) raised KeyError"),
        ("features_flat", r"strategy 'broken': features\(\) must return a DataFrame indexed"),
        ("fit_raises", r"strategy 'broken': fit\(\) raised ZeroDivisionError"),
        ("nan", "strategy 'broken': .* weights are NaN or infinite"),
        ("inf", "strategy 'broken': .* weights are NaN or infinite"),
        ("too_big", r"strategy 'broken': weight 1.5 is above 1"),
        ("not_a_frame", r"strategy 'broken': weights\(\) returned list"),
    ],
)
def test_a_broken_strategy_is_one_clear_error_naming_it(how: str, message: str) -> None:
    frames = ar1_frames(n_symbols=2, n_bars=300, phi=0.0, seed=1)
    with pytest.raises(StrategyError, match=message):
        walk_forward_strategy(frames, Broken(how), spec=SPEC, sizing=SIZING)  # type: ignore[arg-type]


def test_missing_methods_and_a_bad_horizon_are_refused() -> None:
    frames = ar1_frames(n_symbols=2, n_bars=300, phi=0.0, seed=1)

    class NoWeights:
        name = "half_done"
        horizon = 1

        def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
            return stack({"close": close_panel(frames)})

        def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
            return None

    with pytest.raises(StrategyError, match=r"'half_done': missing method\(s\) \['weights'\]"):
        walk_forward_strategy(frames, NoWeights(), spec=SPEC, sizing=SIZING)  # type: ignore[arg-type]
    with pytest.raises(StrategyError, match="'broken': horizon must be an int >= 1, got 0"):
        walk_forward_strategy(frames, Broken("ok", horizon=0), spec=SPEC, sizing=SIZING)  # type: ignore[arg-type]
