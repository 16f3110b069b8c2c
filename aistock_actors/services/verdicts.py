"""A promotion verdict as the judge records and reports it: the champion comparison stage 7
reads, the manifest entry's extra fields, and the stage summaries of the reply."""

from __future__ import annotations

import msgspec

from aistock_actors.core.promotion.gate import ChampionComparison, PromotionDecision
from aistock_actors.messages.model import BacktestCompleted, ModelTrained
from aistock_actors.messages.promotion import JudgeCandidate, StageSummary
from aistock_actors.store.promotion import EQUITY_CURVE_KEY, STRATEGY_ID

_NOTES_SHOWN = ("no_incumbent", "not_measured", "stage_disabled")
"""Stage notes worth showing on the one-line summary."""


def champion_comparison(bt: BacktestCompleted) -> ChampionComparison | None:
    """The bars stage 7 compares on (``None`` from a backtester older than the fields)."""
    if (
        bt.candidate_sharpe_champion_window is None
        or bt.champion_window_bars is None
        or bt.champion_window_out_of_sample is None
    ):
        return None
    return ChampionComparison(
        candidate_sharpe=bt.candidate_sharpe_champion_window,
        start=bt.champion_window_start or bt.oos_start,
        end=bt.champion_window_end or bt.oos_end,
        bars=bt.champion_window_bars,
        out_of_sample=bt.champion_window_out_of_sample,
    )


def entry_extra(
    request: JudgeCandidate,
    trained: ModelTrained,
    bt: BacktestCompleted,
    mode: str,
    action: str,
) -> dict[str, object]:
    skip = {"request_id", "actor", "generation", "type"}
    # The equity curve goes to its own file (PromotionJudge._store_curve), not the manifest.
    backtest = {k: v for k, v in msgspec.structs.asdict(bt).items()
                if k not in skip and k != EQUITY_CURVE_KEY}
    training = {k: v for k, v in msgspec.structs.asdict(trained).items() if k not in skip}
    return {
        "cycle_id": request.request_id.rsplit(":", 1)[0],
        "sha256": trained.sha256,
        "mode": mode,
        "action": action,
        "strategy_id": STRATEGY_ID,
        "backtest": backtest,
        "training": training,
    }


def stage_summaries(decision: PromotionDecision) -> list[StageSummary]:
    """The decision's stages as message structs."""
    return [
        StageSummary(
            stage=s.stage,
            name=s.name,
            status=s.status,
            value=s.value,
            threshold=str(s.threshold),
        )
        for s in decision.stages
    ]


def stage_line(decision: PromotionDecision) -> str:
    """Every stage's value on one line, e.g. ``s1 policy_gates=0.82 passed | ...``."""
    parts = []
    for s in decision.stages:
        value = "n/a" if s.value is None else f"{s.value:.4g}"
        note = f" ({s.note})" if s.note in _NOTES_SHOWN else ""
        parts.append(f"s{s.stage} {s.name}={value} {s.status}{note}")
    return " | ".join(parts)
