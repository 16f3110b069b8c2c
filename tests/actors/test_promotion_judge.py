"""The PromotionJudge alone under a real supervisor: registry grace/removal (T5), rollback, halt.

The train and backtest replies are scripted (their numbers chosen per case), so many judge cycles
run in milliseconds; the models they name are real, stored, hash-verified artifacts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lifecycle_support import (
    active_id,
    audit_records,
    lifecycle_config,
    manifest,
    planted_frames,
    pointer,
    run_cycle,
    step,
)
from support import alert_codes

from aistock_actors.actors.promotion_judge import PromotionJudge
from aistock_actors.config import load_config
from aistock_actors.core import pipeline
from aistock_actors.core.models import ModelParams
from aistock_actors.cycle import CycleRun
from aistock_actors.messages.model import BacktestCompleted, ModelTrained
from aistock_actors.messages.promotion import JudgeCandidate
from aistock_actors.store.models import ModelStore
from aistock_actors.supervisor import ChildSpec, Supervisor

Script = Callable[[str, ModelStore], JudgeCandidate]


@pytest.fixture(scope="module")
def trained_model() -> object:
    frames = planted_frames(n_symbols=3, n_bars=300)
    return pipeline.train_candidate(frames, ModelParams(horizon=1), 0, "base", datetime.now(UTC))


@pytest.fixture()
def store(tmp_path: Path, trained_model: object) -> ModelStore:
    models = ModelStore(tmp_path / "models")
    for model_id in ("m-a", "m-b"):
        models.put(dataclasses.replace(trained_model, model_id=model_id))  # type: ignore[type-var]
    return models


def candidate(model_id: str, *, sharpe: float, incumbent_sharpe: float | None = None,
              evaluate_incumbent: bool = True) -> Script:
    """A judge request for ``model_id``; the incumbent is whatever is active when it is sent."""

    def make(request_id: str, models: ModelStore) -> JudgeCandidate:
        try:
            sha = models.record(model_id).sha256
        except Exception:
            sha = "0" * 64
        active = models.active_record()
        incumbent = active.model_id if active is not None else None
        scored = incumbent is not None and evaluate_incumbent
        trained = ModelTrained(request_id="", model_id=model_id, sha256=sha, train_accuracy=0.6,
                               test_accuracy=0.58, threshold=0.6, samples=1000, symbols=3,
                               data_start="2015-01-02", data_end="2016-01-01")
        backtest = BacktestCompleted(
            request_id="", model_id=model_id, sharpe=sharpe, max_drawdown=0.05, win_rate=0.55,
            total_return=0.3, trade_count=100, transition_drawdown=0.02,
            return_over_drawdown=6.0, exposure=0.5, turnover=10.0, total_costs=100.0, bars=250,
            folds=4, oos_start="2015-06-01", oos_end="2016-01-01", incumbent_model_id=incumbent,
            incumbent_sharpe=incumbent_sharpe if scored else None,
            incumbent_max_drawdown=0.05 if scored else None,
            incumbent_note=None if scored or incumbent is None else "not evaluated")
        return JudgeCandidate(request_id=request_id, trained=trained, backtest=backtest)

    return make


def judge_only(script: Iterator[Script], models: ModelStore) -> list[ChildSpec]:
    def make_request(request_id: str, _cycle: CycleRun) -> JudgeCandidate:
        return next(script)(request_id, models)

    return [ChildSpec(name="promotion_judge", actor_class=PromotionJudge, step="judge",
                      make_request=make_request)]


def run_judge(config: Path, models: ModelStore, *scripts: Script) -> list[dict[str, object]]:
    script = iter(scripts)
    return [step(run_cycle(config, judge_only(script, models))[0], "judge").data
            for _ in scripts]


def promote_a_then_b(config: Path, models: ModelStore) -> None:
    verdicts = run_judge(config, models, candidate("m-a", sharpe=1.5),
                         candidate("m-b", sharpe=1.5, incumbent_sharpe=1.0))
    assert [v["status"] for v in verdicts] == ["approved", "approved"]


def test_registry_grace_then_removal_falls_back_then_deactivates(
    tmp_path: Path, store: ModelStore
) -> None:
    config = lifecycle_config(tmp_path)
    promote_a_then_b(config, store)
    assert active_id(tmp_path) == "m-b"
    failing = candidate("m-x", sharpe=0.1, incumbent_sharpe=0.1)   # incumbent fails stage 1
    passing = candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2)   # incumbent passes stage 1
    missing = candidate("m-x", sharpe=0.1, evaluate_incumbent=False)
    verdicts = run_judge(config, store, failing, passing, missing, missing)
    assert all(v["status"] == "rejected" for v in verdicts)
    assert active_id(tmp_path) == "m-b"  # one fail, a recovery, two misses: still in grace
    run_judge(config, store, missing)
    assert active_id(tmp_path) == "m-a"  # third miss in a row: m-b retired, m-a back
    registry = json.loads((tmp_path / "state/promotion/registry.json").read_text())
    assert registry["retired_models"] == ["m-b"]
    assert registry["strategies"][0]["model_id"] == "m-a"
    assert registry["strategies"][0]["consecutive_failures"] == 0
    run_judge(config, store, missing, missing, missing)
    assert pointer(tmp_path) is None  # m-a retired too and nothing is left to fall back to
    assert store.active_record() is None
    assert (tmp_path / "models/active/deactivated.json").exists()
    actions = [r["action"] for r in audit_records(tmp_path) if r["action"].startswith(
        ("strategy_", "model_deactivated"))]
    assert actions == [
        "strategy_added", "strategy_updated",                  # promotions of m-a, m-b
        "strategy_entered_grace", "strategy_recovered",        # fail, pass
        "strategy_entered_grace", "strategy_grace_continued",  # two misses
        "strategy_removed", "strategy_added",                  # third miss: m-a re-registered
        "strategy_entered_grace", "strategy_grace_continued", "strategy_removed",
        "model_deactivated",
    ]
    assert "strategy_removed" in alert_codes(tmp_path / "state", "error")
    assert "strategy_entered_grace" in alert_codes(tmp_path / "state", "warning")


def write_performance(tmp: Path, model_id: str, returns: list[float]) -> None:
    path = tmp / "state" / "paper" / "performance.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"model_id": model_id, "returns": returns}))


def test_degraded_paper_performance_rolls_back_to_previous_model(
    tmp_path: Path, store: ModelStore
) -> None:
    headless = {"auto_rollback_on_degradation": True, "degradation_threshold_pct": 0.05}
    config = lifecycle_config(tmp_path, headless=headless)
    off = json.loads(config.read_text())
    off["headless"]["auto_rollback_on_degradation"] = False
    disabled = tmp_path / "off.json"
    disabled.write_text(json.dumps(off))
    promote_a_then_b(config, store)
    keep = candidate("m-x", sharpe=0.1, incumbent_sharpe=1.2)
    write_performance(tmp_path, "m-b", [0.001] * 30)  # on track with its backtest
    run_judge(config, store, keep)
    assert active_id(tmp_path) == "m-b"
    write_performance(tmp_path, "m-b", [-0.004] * 30)  # ~14 points behind expectation
    run_judge(disabled, store, keep)
    assert active_id(tmp_path) == "m-b"  # the switch is off: nothing happens

    verdict = run_judge(config, store, keep)[0]
    assert active_id(tmp_path) == "m-a"
    assert any("m-a re-activated" in e for e in verdict["events"])  # type: ignore[attr-defined]
    entry_b = next(e for e in manifest(tmp_path) if e["model_id"] == "m-b")
    assert entry_b["status"] == "rolled_back"
    rollback = [r for r in audit_records(tmp_path) if r["action"] == "auto_rollback_on_degradation"]
    assert len(rollback) == 1
    assert rollback[0]["details"]["rolled_back_to"] == "m-a"
    assert rollback[0]["details"]["shortfall"] > 0.05
    assert "auto_rollback_on_degradation" in alert_codes(tmp_path / "state", "error")
    assert entry_b["rollback"]["rolled_back_to"] == "m-a"
    registry = json.loads((tmp_path / "state/promotion/registry.json").read_text())
    assert registry["rolled_back_models"] == ["m-b"]
    assert registry["strategies"][0]["model_id"] == "m-a"
    assert registry["strategies"][0]["consecutive_failures"] == 0  # no grace on the way back


def test_halt_at_the_moment_of_promotion_refuses_it(tmp_path: Path, store: ModelStore) -> None:
    config = lifecycle_config(tmp_path)
    script = candidate("m-a", sharpe=1.5)
    holder: list[Supervisor] = []

    def halting(request_id: str, _cycle: CycleRun) -> JudgeCandidate:
        holder[0].halt_flag.set()  # the halt lands while the request waits in the inbox
        return script(request_id, store)

    sup = Supervisor(load_config(config), [ChildSpec(
        name="promotion_judge", actor_class=PromotionJudge, step="judge", make_request=halting)])
    holder.append(sup)
    sup.start()
    try:
        sup.begin_cycle()
        while sup.cycle is not None:
            sup.pump(0.05)
    finally:
        sup.stop()
    assert sup.last_summary is not None
    judge = step(sup.last_summary, "judge")
    assert judge.status == "failed" and "halted" in judge.detail
    assert pointer(tmp_path) is None and manifest(tmp_path) == []
    assert "promotion_refused_halted" in [r["action"] for r in audit_records(tmp_path)]
