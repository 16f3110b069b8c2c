"""Promotion messages: the judge step of a cycle."""

from __future__ import annotations

import msgspec

from aistock_actors.messages import Reply, Request
from aistock_actors.messages.model import BacktestCompleted, LifecycleSkipped, ModelTrained


class JudgeCandidate(Request, frozen=True, kw_only=True):
    """Judge the candidate; also re-evaluate the active strategy and check for degradation."""

    trained: ModelTrained | None
    """The train step's reply (``None`` if missing: the step then fails)."""
    backtest: BacktestCompleted | None
    """The backtest step's reply (``None`` if missing: the step then fails)."""
    upstream_skip: LifecycleSkipped | None = None
    """Why there is no candidate, when training (and so the backtest) was skipped."""


class StageSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One stage of the promotion gate, as reported in the cycle summary."""

    stage: int
    name: str
    status: str
    """``passed``, ``failed`` or ``skipped``."""
    value: float | None
    threshold: str


class CandidateJudged(Reply, frozen=True, kw_only=True):
    """The verdict, what was done with it, and every stage's value."""

    model_id: str
    entry_id: str
    """Id of the manifest entry (what ``--approve`` / ``--reject`` take)."""
    approved: bool
    """Whether the candidate passed every evaluated stage."""
    action: str
    """``promote``, ``pending``, ``record_only`` or ``reject``."""
    status: str
    """The manifest status: ``approved``, ``pending``, ``recorded`` or ``rejected``."""
    reasons: list[str]
    """Failure codes in stage order, e.g. ``stage3_failed_overfitting_suspected``."""
    stages: list[StageSummary]
    stage_values: str
    """Every stage's value on one line, for the printed cycle summary."""
    active_model: str | None
    """The active model after this step."""
    events: list[str] = []
    """Registry and rollback events of this step (e.g. ``strategy_entered_grace``)."""


PromotionJudgeInbox = JudgeCandidate
"""What the PromotionJudge accepts besides control messages."""
