"""The supervisor's train -> backtest hand-over: one object per supervisor, one use per item."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _support.frames_support import ar1_frames
from _support.lifecycle_support import lifecycle_config, run_cycle, step, write_planted
from _support.support import write_config

from aistock_actors.config import load_config
from aistock_actors.core.backtest.simulator import CostModel
from aistock_actors.core.model.simulation import SimulationSpec, Sizing
from aistock_actors.core.strategy.rules import SmaCross
from aistock_actors.core.strategy.walkforward import walk_forward_strategy
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.handover import HandOver
from aistock_actors.runtime.supervisor import Supervisor

SPEC = SimulationSpec(n_splits=3, embargo=2, fill="next_open",
                      costs=CostModel(commission_rate=0.0005, half_spread_bps=2.0,
                                      impact_bps=20.0),
                      initial_cash=100_000.0)
SIZING = Sizing(max_position_fraction=0.2, max_gross_exposure=1.0)


def test_the_strategy_report_is_taken_once_for_the_same_model_and_bars() -> None:
    frames = ar1_frames(3, 300, phi=0.2, seed=5)
    report = walk_forward_strategy(frames, SmaCross(), spec=SPEC, sizing=SIZING)
    hand_over = HandOver()
    hand_over.offer_report("m-1", frames, report)
    assert hand_over.take_report("m-2", frames) is None  # another model
    changed = {s: f.copy() for s, f in frames.items()}
    changed["S01"].iloc[-1, changed["S01"].columns.get_loc("close")] += 0.5
    assert hand_over.take_report("m-1", changed) is None  # other bars
    copies = {s: f.copy() for s, f in frames.items()}
    assert hand_over.take_report("m-1", copies) is report  # equal content
    assert hand_over.take_report("m-1", frames) is None  # one use
    hand_over.offer_report("m-1", frames, report)
    hand_over.clear()
    assert hand_over.take_report("m-1", frames) is None


def test_one_hand_over_per_supervisor_reaches_trainer_and_backtester(tmp_path: Path) -> None:
    write_planted(tmp_path, n_symbols=2, n_bars=200)
    first = Supervisor(load_config(write_config(tmp_path)), default_specs())
    second = Supervisor(load_config(write_config(tmp_path)), default_specs())
    assert isinstance(first.hand_over, HandOver) and first.hand_over is not second.hand_over
    trainer, backtester = first.children["trainer"], first.children["backtester"]
    assert first._context(trainer).hand_over is first._context(backtester).hand_over
    assert first._context(trainer).hand_over is first.hand_over


@pytest.mark.parametrize("candidates", [["ml"], ["autocorrelation", "sma_cross"]])
def test_the_backtester_takes_what_the_trainer_handed_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, candidates: list[str]
) -> None:
    write_planted(tmp_path)
    caplog.set_level(logging.INFO)
    summary, _ = run_cycle(lifecycle_config(tmp_path, training={"candidates": candidates}))
    assert step(summary, "backtest").status == "ok"
    assert "taken over from the train step" in caplog.text
