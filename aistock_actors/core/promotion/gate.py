"""The promotion gate: may a candidate model replace the active one, and what happens next.

Stages 1-5 are the manual's "Multi-Stage Promotion Validation"; ``stages_enabled`` (the config's
``headless.promotion_validation_stages``) evaluates the first N of them and records the rest as
``skipped`` -- never as passed. Stages 6 (transition drawdown, SPEC_AUDIT_FIX_06 T2) and 7
(champion/challenger) are our safety additions and are ALWAYS evaluated, whatever
``stages_enabled`` says: lowering the manual's stage count must not switch them off.

Stage 7 compares the candidate's and the incumbent's Sharpe on the same bars: the Backtester's
*champion window* (:class:`ChampionWindow`), which is the bars after the incumbent's training end
when there are enough of them, so that neither model is scored on data it was fitted to. Without
a window (an older backtest) the candidate's own Sharpe is used, as before.

Every stage fails closed: a NaN or infinite input, an accuracy outside ``[0, 1]`` or an unmeasured
transition drawdown fails the stage it feeds. Drawdowns are magnitudes; a negative sign convention
is normalised with ``abs()`` so that ``-0.25`` is judged as a 25 % drawdown. Comparisons allow a
``1e-9`` tolerance so that a value exactly at its threshold passes despite float rounding.

The manifest helpers at the end are pure list transformations; the caller persists the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import msgspec

StageStatus = Literal["passed", "failed", "skipped"]
Mode = Literal["manual", "supervised", "headless"]
Action = Literal["promote", "pending", "record_only", "reject"]
ManifestStatus = Literal["approved", "rejected", "pending", "rolled_back", "recorded"]

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


class ChampionWindow(msgspec.Struct, frozen=True, kw_only=True):
    """The bars on which stage 7 compares the candidate with the incumbent."""

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
    window: ChampionWindow | None = None,
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
    champion_window: ChampionWindow | None = None,
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

    A failing candidate is always ``reject``. A passing one is ``record_only`` in manual mode
    (verdicts are recorded, never applied), ``pending`` operator approval in supervised mode, and
    promoted in headless mode only when ``enable_auto_promotion`` is set (else ``pending``).
    """
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


_STATUS_FOR_ACTION: dict[Action, ManifestStatus] = {
    "promote": "approved",
    "pending": "pending",
    "record_only": "recorded",
    "reject": "rejected",
}


_MANIFEST_STATUSES: frozenset[str] = frozenset(_STATUS_FOR_ACTION.values()) | {"rolled_back"}


def status_for_action(action: Action) -> ManifestStatus:
    """The manifest status that records ``action`` (``promote`` -> ``approved`` ...)."""
    return _STATUS_FOR_ACTION[action]


def utc_iso(timestamp: str | datetime) -> str:
    """Normalise an aware datetime or ISO-8601 string to ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    if isinstance(timestamp, str):
        try:
            moment = datetime.fromisoformat(timestamp)
        except ValueError as exc:
            raise ValueError(f"timestamp {timestamp!r} is not ISO-8601") from exc
    else:
        moment = timestamp
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {timestamp!r} has no timezone; UTC is required")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_float(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _stage_json(stage: StageResult) -> dict[str, object]:
    return {
        "stage": stage.stage,
        "name": stage.name,
        "value": _json_float(stage.value),
        "threshold": stage.threshold,
        "passed": stage.passed,
        "status": stage.status,
        "reason": stage.reason,
        "note": stage.note,
    }


def manifest_entry(
    decision: PromotionDecision,
    status: ManifestStatus,
    timestamp: str | datetime,
    *,
    entry_id: str | None = None,
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """Build one JSON-ready manifest record of ``decision``.

    ``id`` defaults to ``<model_id>@<time>``, which is what an operator passes to ``--approve``.
    Non-finite stage values are written as ``null`` (the stage's ``note`` says why). ``extra``
    keys are added last but may not overwrite the standard keys.
    """
    if status not in _MANIFEST_STATUSES:
        raise ValueError(f"unknown manifest status {status!r}")
    time = utc_iso(timestamp)
    entry: dict[str, object] = {
        "id": entry_id or f"{decision.model_id}@{time}",
        "model_id": decision.model_id,
        "time": time,
        "status": status,
        "approved_by_gate": decision.approved,
        "stages_enabled": decision.stages_enabled,
        "stages": [_stage_json(s) for s in decision.stages],
        "reasons": list(decision.reasons),
    }
    for key, value in (extra or {}).items():
        if key in entry:
            raise ValueError(f"extra key {key!r} would overwrite a standard manifest field")
        entry[key] = value
    return entry


def _find_unique(manifest: list[dict[str, object]], entry_id: str) -> int:
    matches = [i for i, entry in enumerate(manifest) if entry.get("id") == entry_id]
    if not matches:
        raise ValueError(f"no manifest entry with id {entry_id!r}")
    if len(matches) > 1:
        raise ValueError(f"{len(matches)} manifest entries share id {entry_id!r}; refusing")
    return matches[0]


def _transition(
    manifest: list[dict[str, object]],
    entry_id: str,
    required: str,
    new_status: ManifestStatus,
    timestamp: str | datetime,
    verb: str,
    rule: str,
) -> list[dict[str, object]]:
    index = _find_unique(manifest, entry_id)
    current = manifest[index].get("status")
    if current != required:
        raise ValueError(
            f"cannot {verb} manifest entry {entry_id!r}: its status is {current!r}; {rule}"
        )
    updated = dict(manifest[index])
    updated["status"] = new_status
    updated["decided_at"] = utc_iso(timestamp)
    return [*manifest[:index], updated, *manifest[index + 1 :]]


def apply_operator_decision(
    manifest: list[dict[str, object]], entry_id: str, approve: bool, timestamp: str | datetime
) -> list[dict[str, object]]:
    """Return a new manifest with pending entry ``entry_id`` approved or rejected by an operator.

    Raises ``ValueError`` if the id is unknown, ambiguous, or the entry is not ``pending``.
    The input list and its dicts are not modified.
    """
    verb = "approve" if approve else "reject"
    new_status: ManifestStatus = "approved" if approve else "rejected"
    rule = "only a pending entry can be approved or rejected"
    return _transition(manifest, entry_id, "pending", new_status, timestamp, verb, rule)


def mark_rolled_back(
    manifest: list[dict[str, object]], entry_id: str, timestamp: str | datetime
) -> list[dict[str, object]]:
    """Return a new manifest with approved entry ``entry_id`` marked ``rolled_back``."""
    rule = "only an approved entry can be rolled back"
    return _transition(manifest, entry_id, "approved", "rolled_back", timestamp, "roll back", rule)


def pending_entries(manifest: list[dict[str, object]]) -> list[dict[str, object]]:
    """The entries awaiting an operator's ``--approve``/``--reject``, oldest first."""
    return [entry for entry in manifest if entry.get("status") == "pending"]
