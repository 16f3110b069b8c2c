"""Which actors exist and which cycle step each performs: the supervisor's child specs.

Children start in this order and stop in reverse. A cycle step with no child here is reported
as "not built" in ``--status`` and in the cycle summary; nothing pretends to do it.
"""

from __future__ import annotations

from typing import TypeVar

from aistock_actors.actors.backtester import Backtester
from aistock_actors.actors.data_ingestor import DataIngestor
from aistock_actors.actors.health_reporter import HealthReporter
from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.actors.paper_trader import PaperTrader
from aistock_actors.actors.promotion_judge import PromotionJudge
from aistock_actors.actors.risk_governor import RiskGovernor
from aistock_actors.actors.trainer import Trainer
from aistock_actors.messages.data import IngestBars
from aistock_actors.messages.model import (
    BacktestCompleted,
    BacktestModel,
    LifecycleSkipped,
    ModelTrained,
    TrainModel,
)
from aistock_actors.messages.promotion import JudgeCandidate
from aistock_actors.messages.risk import AssessRisk
from aistock_actors.messages.trading import TradePaper
from aistock_actors.runtime.cycle_run import CycleRun
from aistock_actors.runtime.supervisor import ChildSpec

T = TypeVar("T")


def _result(cycle: CycleRun, step: str, kind: type[T]) -> T | None:
    """An earlier step's reply if it has the expected type (the supervisor only runs a step
    when the steps it depends on succeeded, so ``None`` means a bug, reported by the actor)."""
    reply = cycle.results.get(step)
    return reply if isinstance(reply, kind) else None


def train_request(request_id: str, cycle: CycleRun) -> TrainModel:
    """The train step: the candidate's id derives from the cycle id (``m-<cycle id>``)."""
    return TrainModel(request_id=request_id, model_id=f"m-{cycle.cycle_id}")


def backtest_request(request_id: str, cycle: CycleRun) -> BacktestModel:
    """The backtest step: the candidate the train step stored (or why there is none)."""
    return BacktestModel(
        request_id=request_id,
        candidate=_result(cycle, "train", ModelTrained),
        upstream_skip=_result(cycle, "train", LifecycleSkipped),
    )


def judge_request(request_id: str, cycle: CycleRun) -> JudgeCandidate:
    """The judge step: the train and backtest replies (or why there are none)."""
    return JudgeCandidate(
        request_id=request_id,
        trained=_result(cycle, "train", ModelTrained),
        backtest=_result(cycle, "backtest", BacktestCompleted),
        upstream_skip=_result(cycle, "backtest", LifecycleSkipped),
    )


def default_specs() -> list[ChildSpec]:
    """The production children, in start order."""
    return [
        ChildSpec(name="kill_switch_watcher", actor_class=KillSwitchWatcher),
        ChildSpec(name="health_reporter", actor_class=HealthReporter),
        ChildSpec(
            name="data_ingestor",
            actor_class=DataIngestor,
            step="ingest",
            make_request=lambda request_id, _cycle: IngestBars(request_id=request_id),
        ),
        ChildSpec(name="trainer", actor_class=Trainer, step="train", make_request=train_request),
        ChildSpec(
            name="backtester",
            actor_class=Backtester,
            step="backtest",
            make_request=backtest_request,
        ),
        ChildSpec(
            name="promotion_judge",
            actor_class=PromotionJudge,
            step="judge",
            make_request=judge_request,
        ),
        ChildSpec(
            name="risk_governor",
            actor_class=RiskGovernor,
            step="risk",
            make_request=lambda rid, cycle: AssessRisk(request_id=rid, cycle_id=cycle.cycle_id),
        ),
        ChildSpec(
            name="paper_trader",
            actor_class=PaperTrader,
            step="trade",
            make_request=lambda rid, cycle: TradePaper(request_id=rid, cycle_id=cycle.cycle_id),
        ),
    ]


def built_steps() -> set[str]:
    """Cycle steps that have an actor."""
    return {spec.step for spec in default_specs() if spec.step is not None}
