"""The promotion gate: may a candidate model replace the active one, and what happens next.

Stages 1-5 are the manual's "Multi-Stage Promotion Validation"; ``stages_enabled`` (the config's
``headless.promotion_validation_stages``) evaluates the first N of them and records the rest as
``skipped`` -- never as passed. Stages 6 (transition drawdown, SPEC_AUDIT_FIX_06 T2) and 7
(champion/challenger) are our safety additions and are ALWAYS evaluated, whatever
``stages_enabled`` says: lowering the manual's stage count must not switch them off.

Stage 7 compares the candidate's and the incumbent's Sharpe on the same bars: the Backtester's
*champion window* (:class:`~aistock_actors.core.model.champion.ChampionWindow`, handed to the gate
as a :class:`ChampionComparison`), which is the bars after the incumbent's training end when
there are enough of them, so that neither model is scored on data it was fitted to. Without a
window (an older backtest) the candidate's own Sharpe is used, as before.

Every stage fails closed: a NaN or infinite input, an accuracy outside ``[0, 1]`` or an unmeasured
transition drawdown fails the stage it feeds. Drawdowns are magnitudes; a negative sign convention
is normalised with ``abs()`` so that ``-0.25`` is judged as a 25 % drawdown. Comparisons allow a
``1e-9`` tolerance so that a value exactly at its threshold passes despite float rounding.

Stage 8 (plausibility, issue #14) is an honesty guard, also always evaluated: a net Sharpe above
``max_plausible_sharpe`` or a hit rate above ``max_plausible_win_rate`` is far more likely a leak
(features that see the future, a label in the inputs) than skill, so the candidate is *held*
(``leak_suspected``, a critical alert) and never auto-promoted; an operator may still
``--approve`` it after review.

Stage 9 (deflated Sharpe, issue #14) corrects the selection for every trial ever run on the state
directory: the deflated Sharpe ratio (the probability that the candidate's Sharpe beats the best
of that many skill-less trials) must reach ``min_deflated_sharpe``. A backtest that did not
measure it (an older backtester) leaves the stage ``skipped`` with note ``not_measured``, never
``passed``. The manifest records live in
:mod:`aistock_actors.core.promotion.manifest` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import msgspec

from aistock_actors.core.promotion.manifest import (
    AWAITING_OPERATOR,
    Action,
    ManifestStatus,
    StageStatus,
    apply_operator_decision,
    manifest_entry,
    mark_rolled_back,
    pending_entries,
    status_for_action,
    utc_iso,
)

__all__ = [
    "AWAITING_OPERATOR",
    "Action",
    "ManifestStatus",
    "apply_operator_decision",
    "manifest_entry",
    "mark_rolled_back",
    "pending_entries",
    "status_for_action",
    "utc_iso",
]

Mode = Literal["manual", "supervised", "headless"]

MANUAL_STAGES = 5
"""Number of stages the manual defines; ``stages_enabled`` selects the first N of them."""
EPSILON = 1e-9
"""Tolerance for threshold comparisons (a value exactly at its threshold passes)."""

STAGE1_FAILED = "stage1_failed_policy_gates"
STAGE2_FAILED = "stage2_failed_metric_consistency"
STAGE3_FAILED = "stage3_failed_overfitting_suspected"
STAGE4_FAILED = "stage4_failed_return_drawdown_ratio"
STAGE5_FAILED = "stage5_failed_insufficient_trades"
STAGE6_FAILED = "stage6_failed_transition_drawdown"
STAGE6_UNMEASURED = "stage6_failed_transition_drawdown_unmeasured"
STAGE7_FAILED = "stage7_failed_champion_not_beaten"
STAGE9_FAILED = "stage9_failed_deflated_sharpe"
LEAK_SUSPECTED = "leak_suspected"
"""Stage 8's failure code: the result is too good to be true; the candidate is held."""


class CandidateEvaluation(msgspec.Struct, frozen=True, kw_only=True):
    """Out-of-sample evaluation of one model (a candidate or the incumbent champion)."""

    model_id: str
    sharpe: float
    max_drawdown: float
    """Largest peak-to-trough loss as a positive fraction (0.12 = 12 %)."""
    win_rate: float
    train_accuracy: float
    test_accuracy: float
    total_return: float
    """Total out-of-sample return as a fraction."""
    trade_count: int
    transition_drawdown: float | None = None
    """Max drawdown around regime transitions (T2); ``None`` means not measured, which fails."""
    deflated_sharpe: float | None = None
    """Deflated Sharpe ratio over every trial so far (stage 9); ``None``: not measured."""
    trials: int | None = None
    """The trial count the deflated Sharpe ratio was computed with."""


class ChampionComparison(msgspec.Struct, frozen=True, kw_only=True):
    """What stage 7 needs of the backtest's champion window: the bars on which it compares the
    candidate with the incumbent, and the candidate's Sharpe there."""

    candidate_sharpe: float
    """The candidate's Sharpe on these bars (the incumbent's is in its evaluation)."""
    start: str
    end: str
    bars: int
    out_of_sample: bool
    """``True``: all after the incumbent's training end; ``False``: the candidate's whole
    window, partly inside the incumbent's training data (which can only flatter it)."""


class PromotionThresholds(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Gate thresholds; defaults are the manual's. Field names match ``PromotionConfig``."""

    min_sharpe: float = 0.6
    max_drawdown: float = 0.18
    min_win_rate: float = 0.5
    alt_min_sharpe: float = 0.8
    """Stage 2 passes on ``win_rate >= min_win_rate`` OR ``sharpe >= alt_min_sharpe``."""
    min_accuracy_ratio: float = 0.85
    """Stage 3: ``test_accuracy >= min_accuracy_ratio * train_accuracy``."""
    min_return_over_drawdown: float = 2.0
    min_trades: int = 30
    max_transition_drawdown: float = 0.20
    champion_margin: float = 0.1
    """Stage 7: candidate Sharpe must be at least this much above the incumbent's."""
    max_plausible_sharpe: float = 5.0
    """Stage 8: a higher out-of-sample net Sharpe is held as ``leak_suspected``."""
    max_plausible_win_rate: float = 0.8
    """Stage 8: a higher hit rate (share of winning round trips) is held as ``leak_suspected``."""
    min_deflated_sharpe: float = 0.95
    """Stage 9: the deflated Sharpe ratio (a probability) must reach this."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"promotion threshold {name} must be finite, got {value!r}")


class StageResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one stage of the gate."""

    stage: int
    name: str
    value: float | None
    """The measured quantity the stage judged (``None`` when skipped or not measurable)."""
    threshold: str | float
    passed: bool | None
    """``None`` only for a skipped stage."""
    status: StageStatus
    reason: str | None = None
    """The manual-style failure code, ``None`` unless failed."""
    note: str | None = None
    """Extra context, e.g. ``no_incumbent``, ``non_finite_input``, ``zero_drawdown``."""


class PromotionDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The gate's verdict: approved only if every evaluated stage passed."""

    model_id: str
    approved: bool
    stages: list[StageResult]
    reasons: list[str]
    """Failure codes in stage order; empty when approved."""
    stages_enabled: int = MANUAL_STAGES


def _ge(value: float, threshold: float) -> bool:
    return value >= threshold - EPSILON


def _le(value: float, threshold: float) -> bool:
    return value <= threshold + EPSILON


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


_STAGES: dict[int, tuple[str, str]] = {
    1: ("policy_gates", STAGE1_FAILED),
    2: ("metric_consistency", STAGE2_FAILED),
    3: ("overfitting_detection", STAGE3_FAILED),
    4: ("return_drawdown_ratio", STAGE4_FAILED),
    5: ("min_trade_count", STAGE5_FAILED),
    6: ("transition_drawdown", STAGE6_FAILED),
    7: ("champion_challenger", STAGE7_FAILED),
    8: ("plausibility", LEAK_SUSPECTED),
    9: ("deflated_sharpe", STAGE9_FAILED),
}
"""Stage number -> (name, failure code)."""


def _result(
    stage: int,
    value: float | None,
    threshold: str | float,
    ok: bool,
    note: str | None = None,
    reason: str | None = None,
) -> StageResult:
    return StageResult(
        stage=stage,
        name=_STAGES[stage][0],
        value=value,
        threshold=threshold,
        passed=ok,
        status="passed" if ok else "failed",
        reason=None if ok else (reason or _STAGES[stage][1]),
        note=note,
    )


def _non_finite(stage: int, threshold: str | float) -> StageResult:
    return _result(stage, None, threshold, False, note="non_finite_input")


def _stage1(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = f"sharpe>={t.min_sharpe}, max_drawdown<={t.max_drawdown}"
    if not _finite(c.sharpe, c.max_drawdown):
        return _non_finite(1, thr)
    drawdown = abs(c.max_drawdown)
    ok = _ge(c.sharpe, t.min_sharpe) and _le(drawdown, t.max_drawdown)
    return _result(1, c.sharpe, thr, ok, note=f"max_drawdown={drawdown}")


def _stage2(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = f"win_rate>={t.min_win_rate} or sharpe>={t.alt_min_sharpe}"
    if not _finite(c.win_rate, c.sharpe):
        return _non_finite(2, thr)
    ok = _ge(c.win_rate, t.min_win_rate) or _ge(c.sharpe, t.alt_min_sharpe)
    return _result(2, c.win_rate, thr, ok, note=f"sharpe={c.sharpe}")


def _stage3(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = t.min_accuracy_ratio
    if not _finite(c.train_accuracy, c.test_accuracy):
        return _non_finite(3, thr)
    if not (0.0 < c.train_accuracy <= 1.0 and 0.0 <= c.test_accuracy <= 1.0):
        return _result(3, None, thr, False, note="accuracy_out_of_range")
    ok = _ge(c.test_accuracy, t.min_accuracy_ratio * c.train_accuracy)
    return _result(3, c.test_accuracy / c.train_accuracy, thr, ok)


def _stage4(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = t.min_return_over_drawdown
    if not _finite(c.total_return, c.max_drawdown):
        return _non_finite(4, thr)
    drawdown = abs(c.max_drawdown)
    if drawdown == 0.0:
        # No drawdown: the ratio is unbounded for a gain and meaningless for a loss.
        return _result(4, None, thr, c.total_return > 0.0, note="zero_drawdown")
    ratio = c.total_return / drawdown
    return _result(4, ratio, thr, _ge(ratio, thr))


def _stage5(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    return _result(5, float(c.trade_count), t.min_trades, c.trade_count >= t.min_trades)


def _stage6(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = t.max_transition_drawdown
    if c.transition_drawdown is None:
        return _result(6, None, thr, False, note="not_measured", reason=STAGE6_UNMEASURED)
    if not _finite(c.transition_drawdown):
        return _non_finite(6, thr)
    value = abs(c.transition_drawdown)
    return _result(6, value, thr, _le(value, thr))


def _stage7(
    c: CandidateEvaluation,
    t: PromotionThresholds,
    incumbent: CandidateEvaluation | None,
    window: ChampionComparison | None = None,
) -> StageResult:
    thr = t.champion_margin
    sharpe = c.sharpe if window is None or incumbent is None else window.candidate_sharpe
    if not _finite(sharpe) or (incumbent is not None and not _finite(incumbent.sharpe)):
        return _non_finite(7, thr)
    if incumbent is None:
        return _result(7, None, thr, True, note="no_incumbent")
    margin = sharpe - incumbent.sharpe
    note = f"incumbent={incumbent.model_id}"
    if window is not None:
        where = (
            "after the incumbent's training end"
            if window.out_of_sample
            else "full window, partly the incumbent's training data"
        )
        note += (
            f"; window={window.start}..{window.end} ({window.bars} bars, {where}); "
            f"sharpe candidate={sharpe} incumbent={incumbent.sharpe}"
        )
    return _result(7, margin, thr, _ge(margin, thr), note=note)


def _stage8(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = f"sharpe<={t.max_plausible_sharpe}, win_rate<={t.max_plausible_win_rate}"
    if not _finite(c.sharpe, c.win_rate):
        return _non_finite(8, thr)
    ok = _le(c.sharpe, t.max_plausible_sharpe) and _le(c.win_rate, t.max_plausible_win_rate)
    return _result(8, c.sharpe, thr, ok, note=f"win_rate={c.win_rate}")


def _stage9(c: CandidateEvaluation, t: PromotionThresholds) -> StageResult:
    thr = t.min_deflated_sharpe
    if c.deflated_sharpe is None:
        return StageResult(stage=9, name=_STAGES[9][0], value=None, threshold=thr, passed=None,
                           status="skipped", note="not_measured")
    if not _finite(c.deflated_sharpe):
        return _non_finite(9, thr)
    note = f"trials={c.trials}" if c.trials is not None else None
    return _result(9, c.deflated_sharpe, thr, _ge(c.deflated_sharpe, thr), note=note)


_Check = Callable[[CandidateEvaluation, PromotionThresholds], StageResult]
_MANUAL_CHECKS: tuple[_Check, ...] = (_stage1, _stage2, _stage3, _stage4, _stage5)


def _skipped(stage: int) -> StageResult:
    return StageResult(
        stage=stage,
        name=_STAGES[stage][0],
        value=None,
        threshold="n/a",
        passed=None,
        status="skipped",
        note="stage_disabled",
    )


def evaluate_candidate(
    candidate: CandidateEvaluation,
    thresholds: PromotionThresholds,
    stages_enabled: int = MANUAL_STAGES,
    incumbent: CandidateEvaluation | None = None,
    champion_window: ChampionComparison | None = None,
) -> PromotionDecision:
    """Run every stage and return the verdict; all stages are evaluated, none short-circuits.

    Stage 7 compares ``incumbent.sharpe`` with ``champion_window.candidate_sharpe`` (the same
    bars) when a window is given, else with ``candidate.sharpe``.
    """
    if not 1 <= stages_enabled <= MANUAL_STAGES:
        raise ValueError(f"stages_enabled must be in 1..{MANUAL_STAGES}, got {stages_enabled}")
    stages: list[StageResult] = []
    for number, check in enumerate(_MANUAL_CHECKS, start=1):
        if number <= stages_enabled:
            stages.append(check(candidate, thresholds))
        else:
            stages.append(_skipped(number))
    stages.append(_stage6(candidate, thresholds))
    stages.append(_stage7(candidate, thresholds, incumbent, champion_window))
    stages.append(_stage8(candidate, thresholds))
    stages.append(_stage9(candidate, thresholds))
    reasons = [s.reason for s in stages if s.status == "failed" and s.reason is not None]
    approved = all(s.status != "failed" for s in stages)
    return PromotionDecision(
        model_id=candidate.model_id,
        approved=approved,
        stages=stages,
        reasons=reasons,
        stages_enabled=stages_enabled,
    )


def decide_action(decision: PromotionDecision, mode: Mode, enable_auto_promotion: bool) -> Action:
    """Map a verdict to what the autopilot does with it in ``mode``.

    A candidate whose result is implausibly good (stage 8, ``leak_suspected``) is ``hold`` in
    every mode: never promoted automatically, left for an operator's review. Any other failing
    candidate is ``reject``. A passing one is ``record_only`` in manual mode
    (verdicts are recorded, never applied), ``pending`` operator approval in supervised mode, and
    promoted in headless mode only when ``enable_auto_promotion`` is set (else ``pending``).
    """
    if LEAK_SUSPECTED in decision.reasons:
        return "hold"
    if not decision.approved:
        return "reject"
    match mode:
        case "manual":
            return "record_only"
        case "supervised":
            return "pending"
        case "headless":
            return "promote" if enable_auto_promotion else "pending"
        case _:
            raise ValueError(f"unknown mode {mode!r}; expected manual, supervised or headless")
