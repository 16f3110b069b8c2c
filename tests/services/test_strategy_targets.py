"""Paper-trading targets of a strategy: sized and capped like a model's signals; never above the
ceilings (a Hypothesis property); a strategy misbehaving at trade time is one error naming it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.frames_support import ar1_frames
from _support.support import write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aistock_actors.config import load_config
from aistock_actors.core.data.bars import frame_arrays
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.core.strategy.artifact import StrategyModel, StrategySpec
from aistock_actors.core.strategy.live_rules import LiveRuleWeights
from aistock_actors.core.strategy.rules import (
    AutocorrelationFit,
    AutocorrelationStrategy,
    SmaCross,
    TimeSeriesMomentum,
    stack,
)
from aistock_actors.errors import StrategyError
from aistock_actors.services.strategy_targets import sized_targets, strategy_targets

FRAMES = ar1_frames(4, 80, phi=0.1, seed=3)
SYMBOLS = sorted(FRAMES)


@dataclass(frozen=True)
class Fixed:
    """Returns the given weights on every bar (or whatever it is told to)."""

    weights_: tuple[float, ...]
    horizon: int = 1
    name: str = "fixed"

    def features(self, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        close = pd.DataFrame({s: f["close"] for s, f in frames.items()}).sort_index()
        return stack({"close": close})

    def fit(self, features: pd.DataFrame, forward_returns: pd.Series) -> None:
        return None

    def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
        close = features["close"].unstack("symbol")
        row = np.asarray(self.weights_, dtype=float)
        return pd.DataFrame(np.tile(row, (len(close), 1)), index=close.index,
                            columns=close.columns)


def _prices() -> dict[str, float]:
    return {s: float(FRAMES[s]["close"].iloc[-1]) for s in SYMBOLS}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    weights=st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4),
    fraction=st.floats(0.0, 2.0),
    notional=st.floats(0.0, 5e6),
    gross=st.floats(0.0, 3.0),
    equity=st.floats(1.0, 1e8),
)
def test_strategy_targets_never_exceed_the_ceilings(
    weights: list[float], fraction: float, notional: float, gross: float, equity: float
) -> None:
    limits = RiskLimits(max_position_fraction=fraction, max_notional_per_symbol=notional,
                        max_gross_exposure=gross)
    targets = sized_targets(Fixed(tuple(weights)), None, FRAMES, equity, _prices(), limits)
    cap = min(fraction, HARD_CEILING_POSITION_FRACTION)
    for w in targets.values():
        assert abs(w) <= cap + 1e-12
        assert abs(w) * equity <= min(notional, HARD_CEILING_NOTIONAL_CAP) * (1 + 1e-9) + 1e-6
    assert sum(abs(w) for w in targets.values()) <= gross + 1e-9


def test_targets_are_the_fixed_per_name_weight_like_a_models_signals() -> None:
    limits = RiskLimits(max_position_fraction=0.2, max_notional_per_symbol=1e6,
                        max_gross_exposure=1.0)
    targets = sized_targets(Fixed((1.0, -1.0, 0.0, 0.5)), None, FRAMES, 100_000.0, _prices(),
                            limits)
    assert targets == pytest.approx({SYMBOLS[0]: 0.2, SYMBOLS[1]: -0.2, SYMBOLS[3]: 0.1})


@pytest.mark.parametrize(
    ("weights", "message"),
    [((np.nan, 0.0, 0.0, 0.0), "NaN or infinite"), ((np.inf, 0.0, 0.0, 0.0), "NaN or infinite"),
     ((1.5, 0.0, 0.0, 0.0), "above 1")],
)
def test_bad_weights_at_trade_time_are_one_error_naming_the_strategy(
    weights: tuple[float, ...], message: str
) -> None:
    with pytest.raises(StrategyError, match=f"strategy 'fixed'.*{message}"):
        sized_targets(Fixed(weights), None, FRAMES, 1e5, _prices(), RiskLimits())


def test_a_strategy_raising_at_trade_time_is_named() -> None:
    @dataclass(frozen=True)
    class Raising(Fixed):
        name: str = "raising"

        def weights(self, features: pd.DataFrame, state: object) -> pd.DataFrame:
            raise KeyError("no such column")

    with pytest.raises(StrategyError, match=r"strategy 'raising': weights\(\) raised KeyError"):
        sized_targets(Raising((0.0,) * 4), None, FRAMES, 1e5, _prices(), RiskLimits())


def _artifact(strategy: object, state: object) -> StrategyModel:
    return StrategyModel(
        model_id="m-live", created_at=datetime(2020, 1, 1, tzinfo=UTC),
        spec=StrategySpec(name="rule", builtin=strategy),  # type: ignore[arg-type]
        state=state, horizon=1, train_accuracy=0.5, test_accuracy=0.5,
    )


@pytest.mark.parametrize("rule", [
    AutocorrelationStrategy(halflife=3, entry_bps=5.0, full_at=2.0),
    TimeSeriesMomentum(lookback=5),
    SmaCross(fast=3, slow=8),
    Fixed((1.0, -1.0, 0.0, 0.5)),  # a user strategy: the full computation
])
def test_live_targets_are_the_full_computations_bar_by_bar(rule: object, tmp_path: Path) -> None:
    """The paper trader's path (a LiveRuleWeights carried between cycles) sizes exactly what
    the full computation on the whole history does, cycle after cycle."""
    loaded = load_config(write_config(tmp_path))
    arrays = {s: frame_arrays(f) for s, f in FRAMES.items()}
    artifact = _artifact(rule, AutocorrelationFit(trade=True, train_net_pnl=1.0))
    live = LiveRuleWeights()
    held = 0
    for end in range(30, 81):
        now = {s: (ts[:end], values[:end]) for s, (ts, values) in arrays.items()}
        prices = {s: float(values[end - 1, 3]) for s, (_, values) in now.items()}
        got = strategy_targets(artifact, loaded, now, 1e5, prices, RiskLimits(), live)
        want = strategy_targets(artifact, loaded, now, 1e5, prices, RiskLimits())
        assert got == want, end
        held += len(got)
    assert held > 0
