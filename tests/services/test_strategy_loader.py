"""User strategies named ``module:Class``: loaded from the config's folder or an installed
package (never from state), checked, hashed; the example runs train -> backtest -> gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.promotion.gate import (
    CandidateEvaluation,
    PromotionThresholds,
    evaluate_candidate,
)
from aistock_actors.core.strategy.rules import SmaCross
from aistock_actors.core.strategy.selection import deflated_sharpe_ratio
from aistock_actors.core.strategy.walkforward import walk_forward_strategy
from aistock_actors.errors import StrategyError
from aistock_actors.services.strategy_loader import load_strategy, strategy_fingerprint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reversal_strategy.py"
SPEC = SimulationSpec(n_splits=4, embargo=5, fill="next_open",
                      costs=CostModel(
                          commission_rate=0.0005,
                          half_spread_bps=2.0,
                          impact_bps=200.0,
                      ),
                      initial_cash=100_000.0)
SIZING = Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)


@pytest.fixture()
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "configs"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "reversal_strategy.py")
    return folder


def test_the_example_runs_train_backtest_gate(config_dir: Path) -> None:
    strategy = load_strategy("reversal_strategy:FadeBigMoves", {"threshold": 2.5, "window": 30},
                             config_dir=config_dir)
    assert strategy.name == "fade_big_moves"
    frames = generate_universe(10, 800, 7)
    report = walk_forward_strategy(frames, strategy, spec=SPEC, sizing=SIZING)
    assert report.folds == SPEC.n_splits and report.metrics.trade_count > 30
    m = report.metrics
    decision = evaluate_candidate(
        CandidateEvaluation(model_id=report.name, sharpe=m.sharpe, max_drawdown=m.max_drawdown,
                            win_rate=m.win_rate, train_accuracy=report.train_accuracy,
                            test_accuracy=report.test_accuracy, total_return=m.total_return,
                            trade_count=m.trade_count,
                            transition_drawdown=m.transition_max_drawdown,
                            deflated_sharpe=deflated_sharpe_ratio(report.returns, 1), trials=1),
        PromotionThresholds(),
    )
    assert [s.stage for s in decision.stages] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(s.status != "skipped" for s in decision.stages)
    assert all(s.value is not None or s.note for s in decision.stages)


def test_an_installed_strategy_loads_and_the_fingerprint_follows_the_code(
    config_dir: Path,
) -> None:
    built_in = load_strategy("aistock_actors.core.strategy.rules:SmaCross", {"fast": 5})
    assert isinstance(built_in, SmaCross) and built_in.fast == 5
    path = "reversal_strategy:FadeBigMoves"
    first = strategy_fingerprint(load_strategy(path, config_dir=config_dir), path, {})
    assert first == strategy_fingerprint(load_strategy(path, config_dir=config_dir), path, {})
    assert first != strategy_fingerprint(load_strategy(path, config_dir=config_dir), path,
                                         {"threshold": 3.0})
    source = config_dir / "reversal_strategy.py"
    source.write_text(source.read_text() + "\n# edited\n")
    assert first != strategy_fingerprint(load_strategy(path, config_dir=config_dir), path, {})


def write(folder: Path, name: str, code: str) -> None:
    (folder / f"{name}.py").write_text(code)


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("no_such_module:X", {}, r"'no_such_module:X': module does not import"),
        ("broken_syntax:X", {}, r"'broken_syntax:X': module does not import: SyntaxError"),
        ("reversal_strategy:Nope", {}, r"module 'reversal_strategy' has no class 'Nope'"),
        ("half_done:HalfDone", {}, r"class HalfDone lacks method\(s\) \['weights'\]"),
        ("reversal_strategy:FadeBigMoves", {"window": "forty"},
         r"param 'window' must be int, got str 'forty'"),
        ("reversal_strategy:FadeBigMoves", {"threshold": True},
         r"param 'threshold' must be float, got bool True"),
        ("reversal_strategy:FadeBigMoves", {"windw": 3}, r"unknown param 'windw'"),
        ("raises_in_init:Raises", {}, r"'raises_in_init:Raises': constructor raised ValueError"),
        ("not a path", {}, r"expected 'module:Class'"),
    ],
)
def test_bad_strategies_are_one_clear_error_naming_them(
    config_dir: Path, path: str, params: dict[str, object], message: str
) -> None:
    write(config_dir, "broken_syntax", "def oops(:\n")
    write(config_dir, "half_done", "class HalfDone:\n    def features(self, f): ...\n"
                                   "    def fit(self, f, r): ...\n")
    write(config_dir, "raises_in_init", "class Raises:\n    horizon = 1\n    name = 'r'\n"
                                        "    def __init__(self): raise ValueError('no')\n"
                                        "    def features(self, f): ...\n"
                                        "    def fit(self, f, r): ...\n"
                                        "    def weights(self, f, s): ...\n")
    with pytest.raises(StrategyError, match=message):
        load_strategy(path, params, config_dir=config_dir)


def test_code_is_never_loaded_from_the_state_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(EXAMPLE, state / "reversal_strategy.py")
    with pytest.raises(StrategyError, match="inside the state directory"):
        load_strategy("reversal_strategy:FadeBigMoves", config_dir=state, state_dir=state)
