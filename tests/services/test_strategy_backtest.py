"""The backtest step's figures for a strategy artifact: the report handed over or recomputed
after a restart (the same figures), and an incumbent that is a TrainedModel or a StrategyModel
scored on the champion window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from _support.lifecycle_support import planted_frames
from _support.paper_support import head, trained_model
from _support.support import write_config

from aistock_actors.config import LoadedConfig, load_config
from aistock_actors.core.model.pipeline import sequential_map
from aistock_actors.core.strategy.artifact import StrategyModel, StrategySpec
from aistock_actors.core.strategy.rules import AutocorrelationStrategy, SmaCross
from aistock_actors.core.strategy.walkforward import fit_on_all, walk_forward_strategy
from aistock_actors.runtime.handover import HandOver
from aistock_actors.services import pipeline_params
from aistock_actors.services.strategy_backtest import score

CREATED = datetime(2024, 1, 2, tzinfo=UTC)
FRAMES = planted_frames(n_symbols=4, n_bars=400)


@pytest.fixture()
def loaded(tmp_path: Path) -> LoadedConfig:
    return load_config(write_config(tmp_path))


def strategy_model(model_id: str, strategy: SmaCross | AutocorrelationStrategy,
                   frames: dict[str, pd.DataFrame]) -> StrategyModel:
    return StrategyModel(model_id=model_id, created_at=CREATED,
                         spec=StrategySpec(name=strategy.name, builtin=strategy),
                         state=fit_on_all(frames, strategy), horizon=strategy.horizon,
                         train_accuracy=0.5, test_accuracy=0.5)


def test_a_recomputed_report_gives_the_handed_over_figures(loaded: LoadedConfig) -> None:
    candidate = strategy_model("c1", AutocorrelationStrategy(), FRAMES)
    report = walk_forward_strategy(FRAMES, AutocorrelationStrategy(),
                                   spec=pipeline_params.simulation_spec(loaded.config),
                                   sizing=pipeline_params.sizing(loaded.config))
    hand_over = HandOver()
    hand_over.offer_report("c1", FRAMES, report)
    handed = score(loaded, FRAMES, candidate, None, None, hand_over, sequential_map)
    recomputed = score(loaded, FRAMES, candidate, None, None, None, sequential_map)  # a restart
    assert handed.candidate.metrics == recomputed.candidate.metrics
    assert handed.folds == recomputed.folds and handed.start == recomputed.start
    assert handed.incumbent is None and handed.incumbent_id is None


@pytest.mark.parametrize("kind", ["trained_model", "strategy_model"])
def test_an_incumbent_of_either_kind_is_scored_after_its_training_end(
    loaded: LoadedConfig, kind: str
) -> None:
    early = head(FRAMES, 250)  # the incumbent saw the first 250 bars only
    incumbent = (trained_model(early, "inc", threshold=0.5) if kind == "trained_model"
                 else strategy_model("inc", SmaCross(), early))
    data_end = pd.Timestamp(early["P00"].index[-1]).isoformat()
    candidate = strategy_model("c1", AutocorrelationStrategy(), FRAMES)
    scored = score(loaded, FRAMES, candidate, incumbent, data_end, None, sequential_map)
    assert scored.incumbent_id == "inc" and scored.incumbent is not None, scored.incumbent_note
    window = scored.champion
    assert window is not None and window.after_training_end
    assert window.bars == 150 and window.start > data_end  # the unseen bars only
    assert window.candidate.bars == window.bars  # the candidate re-simulated on them too
