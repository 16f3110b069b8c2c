"""Tests for the promotion gate, the mode policy and the manifest helpers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aistock_actors.core.promotion.gate import (
    LEAK_SUSPECTED,
    STAGE1_FAILED,
    STAGE2_FAILED,
    STAGE3_FAILED,
    STAGE4_FAILED,
    STAGE5_FAILED,
    STAGE6_FAILED,
    STAGE6_UNMEASURED,
    STAGE7_FAILED,
    STAGE9_FAILED,
    CandidateEvaluation,
    ChampionComparison,
    PromotionDecision,
    PromotionThresholds,
    apply_operator_decision,
    decide_action,
    evaluate_candidate,
    manifest_entry,
    mark_rolled_back,
    pending_entries,
    status_for_action,
    utc_iso,
)
from aistock_actors.core.promotion.manifest import ManifestEntry

T = PromotionThresholds()
NOW = "2025-01-13T12:00:00Z"


def good(**changes: object) -> CandidateEvaluation:
    base = CandidateEvaluation(
        model_id="m1",
        sharpe=1.2,
        max_drawdown=0.10,
        win_rate=0.55,
        train_accuracy=0.70,
        test_accuracy=0.66,
        total_return=0.40,
        trade_count=120,
        transition_drawdown=0.08,
        deflated_sharpe=0.97,
        trials=4,
    )
    return msgspec.structs.replace(base, **changes)


def stage(decision: PromotionDecision, number: int) -> tuple[str, str | None]:
    result = decision.stages[number - 1]
    assert result.stage == number
    return result.status, result.reason


def test_good_candidate_passes_all_nine_stages() -> None:
    decision = evaluate_candidate(good(), T)
    assert decision.approved
    assert decision.reasons == []
    assert [s.stage for s in decision.stages] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(s.status == "passed" and s.passed for s in decision.stages)
    assert decision.stages[6].note == "no_incumbent"


def test_manual_default_thresholds() -> None:
    assert (T.min_sharpe, T.max_drawdown, T.min_win_rate, T.alt_min_sharpe) == (0.6, 0.18, 0.5, 0.8)
    assert (T.min_accuracy_ratio, T.min_return_over_drawdown, T.min_trades) == (0.85, 2.0, 30)
    assert (T.max_transition_drawdown, T.champion_margin) == (0.20, 0.1)


@pytest.mark.parametrize(
    ("changes", "number", "reason"),
    [
        ({"sharpe": 0.59}, 1, STAGE1_FAILED),
        ({"max_drawdown": 0.19}, 1, STAGE1_FAILED),
        ({"win_rate": 0.45, "sharpe": 0.7}, 2, STAGE2_FAILED),
        ({"train_accuracy": 0.90, "test_accuracy": 0.70}, 3, STAGE3_FAILED),
        ({"total_return": 0.19}, 4, STAGE4_FAILED),
        ({"trade_count": 29}, 5, STAGE5_FAILED),
        ({"transition_drawdown": 0.25}, 6, STAGE6_FAILED),
        ({"transition_drawdown": None}, 6, STAGE6_UNMEASURED),
    ],
)
def test_each_stage_fails_with_its_code(
    changes: dict[str, object], number: int, reason: str
) -> None:
    decision = evaluate_candidate(good(**changes), T)
    assert not decision.approved
    assert stage(decision, number) == ("failed", reason)
    assert reason in decision.reasons


def test_overfitting_reason_is_the_manuals_string() -> None:
    decision = evaluate_candidate(good(train_accuracy=0.9, test_accuracy=0.6), T)
    assert decision.reasons == ["stage3_failed_overfitting_suspected"]


def test_values_exactly_at_thresholds_pass() -> None:
    candidate = good(
        sharpe=0.9,
        max_drawdown=0.18,
        win_rate=0.5,
        train_accuracy=0.8,
        test_accuracy=0.68,
        total_return=0.36,
        trade_count=30,
        transition_drawdown=0.20,
    )
    incumbent = good(model_id="champ", sharpe=0.8)
    decision = evaluate_candidate(candidate, T, incumbent=incumbent)
    assert decision.approved, decision.reasons


def test_stage2_is_an_or() -> None:
    assert stage(evaluate_candidate(good(win_rate=0.4, sharpe=0.85), T), 2)[0] == "passed"
    assert stage(evaluate_candidate(good(win_rate=0.6, sharpe=0.65), T), 2)[0] == "passed"


@pytest.mark.parametrize(("total_return", "passes"), [(0.05, True), (0.0, False), (-0.05, False)])
def test_stage4_zero_drawdown(total_return: float, passes: bool) -> None:
    decision = evaluate_candidate(good(max_drawdown=0.0, total_return=total_return), T)
    assert stage(decision, 4)[0] == ("passed" if passes else "failed")
    assert decision.stages[3].note == "zero_drawdown"


def test_negative_drawdown_sign_is_normalised() -> None:
    decision = evaluate_candidate(good(max_drawdown=-0.25, transition_drawdown=-0.25), T)
    assert STAGE1_FAILED in decision.reasons
    assert STAGE6_FAILED in decision.reasons


@pytest.mark.parametrize(("train", "test"), [(0.0, 0.0), (1.2, 1.1), (0.7, -0.1)])
def test_accuracy_out_of_range_fails_stage3(train: float, test: float) -> None:
    decision = evaluate_candidate(good(train_accuracy=train, test_accuracy=test), T)
    assert stage(decision, 3) == ("failed", STAGE3_FAILED)


def test_transition_drawdown_of_25_pct_is_rejected_t2() -> None:
    decision = evaluate_candidate(good(transition_drawdown=0.25), T)
    assert decision.reasons == [STAGE6_FAILED]
    assert decision.stages[5].value == pytest.approx(0.25)


def test_champion_must_be_beaten_by_the_margin() -> None:
    incumbent = good(model_id="champ", sharpe=1.15)
    decision = evaluate_candidate(good(sharpe=1.2), T, incumbent=incumbent)
    assert decision.reasons == [STAGE7_FAILED]
    assert decision.stages[6].value == pytest.approx(0.05)
    assert evaluate_candidate(good(sharpe=1.3), T, incumbent=incumbent).approved


def test_champion_is_compared_on_the_champion_window_not_the_candidate_whole_window() -> None:
    incumbent = good(model_id="champ", sharpe=0.9)  # on the bars after its training end
    window = ChampionComparison(candidate_sharpe=0.95, start="2024-07-01", end="2024-12-31",
                            bars=126, out_of_sample=True)
    # The candidate's whole-window Sharpe (1.2) would beat the incumbent; on the same bars it
    # does not: stage 7 compares like with like, stages 1-6 still judge the whole window.
    decision = evaluate_candidate(good(sharpe=1.2), T, incumbent=incumbent,
                                  champion_window=window)
    assert decision.reasons == [STAGE7_FAILED]
    assert decision.stages[6].value == pytest.approx(0.05)
    note = decision.stages[6].note or ""
    assert "incumbent=champ" in note and "window=2024-07-01..2024-12-31 (126 bars" in note
    assert "after the incumbent's training end" in note
    assert all(s.status == "passed" for s in decision.stages[:6])
    better = msgspec.structs.replace(window, candidate_sharpe=1.0)
    assert evaluate_candidate(good(sharpe=0.7), T, incumbent=incumbent,
                              champion_window=better).approved
    full = msgspec.structs.replace(better, out_of_sample=False)
    note = evaluate_candidate(good(), T, incumbent=incumbent, champion_window=full).stages[6].note
    assert "full window, partly the incumbent's training data" in (note or "")


def test_champion_window_without_incumbent_and_non_finite_window_sharpe() -> None:
    window = ChampionComparison(candidate_sharpe=math.nan, start="a", end="b", bars=70,
                            out_of_sample=True)
    decision = evaluate_candidate(good(), T, champion_window=window)
    assert decision.approved and decision.stages[6].note == "no_incumbent"
    decision = evaluate_candidate(good(), T, incumbent=good(model_id="champ", sharpe=0.1),
                                  champion_window=window)
    assert decision.reasons == [STAGE7_FAILED] and decision.stages[6].note == "non_finite_input"


@pytest.mark.parametrize("enabled", [1, 2, 3, 4, 5])
def test_disabled_manual_stages_are_skipped_not_passed(enabled: int) -> None:
    decision = evaluate_candidate(good(), T, stages_enabled=enabled)
    statuses = [s.status for s in decision.stages]
    assert statuses[:enabled] == ["passed"] * enabled
    assert statuses[enabled:5] == ["skipped"] * (5 - enabled)
    assert all(s.passed is None for s in decision.stages[enabled:5])
    assert statuses[5:] == ["passed", "passed", "passed", "passed"]


def test_three_stages_ignore_trade_count_but_never_the_safety_stages() -> None:
    few_trades = good(trade_count=3)
    assert evaluate_candidate(few_trades, T, stages_enabled=3).approved
    unmeasured = good(trade_count=3, transition_drawdown=None)
    decision = evaluate_candidate(unmeasured, T, stages_enabled=1)
    assert decision.reasons == [STAGE6_UNMEASURED]
    champion = good(model_id="champ", sharpe=5.0)
    assert evaluate_candidate(good(), T, stages_enabled=1, incumbent=champion).reasons == [
        STAGE7_FAILED
    ]


@pytest.mark.parametrize("enabled", [0, 6, -1])
def test_stages_enabled_out_of_range(enabled: int) -> None:
    with pytest.raises(ValueError, match="stages_enabled"):
        evaluate_candidate(good(), T, stages_enabled=enabled)


FLOAT_FIELDS = [
    "sharpe",
    "max_drawdown",
    "win_rate",
    "train_accuracy",
    "test_accuracy",
    "total_return",
    "transition_drawdown",
]


@pytest.mark.parametrize("field", FLOAT_FIELDS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_never_passes(field: str, bad: float) -> None:
    decision = evaluate_candidate(good(**{field: bad}), T)
    assert not decision.approved
    assert any(s.note == "non_finite_input" for s in decision.stages)


def test_non_finite_incumbent_fails_stage7() -> None:
    decision = evaluate_candidate(good(), T, incumbent=good(model_id="c", sharpe=math.nan))
    assert decision.reasons == [STAGE7_FAILED]


def test_thresholds_must_be_finite() -> None:
    with pytest.raises(ValueError, match="min_sharpe"):
        PromotionThresholds(min_sharpe=math.nan)
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.json.decode(b'{"min_sharpee": 1.0}', type=PromotionThresholds)


maybe_bad = st.one_of(
    st.floats(min_value=-2.0, max_value=3.0), st.sampled_from([math.nan, math.inf, -math.inf])
)
candidates = st.builds(
    CandidateEvaluation,
    model_id=st.just("m"),
    sharpe=maybe_bad,
    max_drawdown=maybe_bad,
    win_rate=maybe_bad,
    train_accuracy=maybe_bad,
    test_accuracy=maybe_bad,
    total_return=maybe_bad,
    trade_count=st.integers(min_value=0, max_value=500),
    transition_drawdown=st.one_of(st.none(), maybe_bad),
    deflated_sharpe=st.one_of(st.none(), maybe_bad),
    trials=st.one_of(st.none(), st.integers(min_value=1, max_value=1_000)),
)


@given(candidates, st.integers(min_value=1, max_value=5), st.one_of(st.none(), candidates))
def test_gate_invariants(
    candidate: CandidateEvaluation, enabled: int, incumbent: CandidateEvaluation | None
) -> None:
    decision = evaluate_candidate(candidate, T, stages_enabled=enabled, incumbent=incumbent)
    evaluated = [s for s in decision.stages if s.status != "skipped"]
    assert len(decision.stages) == 9
    skipped = 5 - enabled + (candidate.deflated_sharpe is None)
    assert sum(s.status == "skipped" for s in decision.stages) == skipped
    assert {6, 7, 8} <= {s.stage for s in evaluated}
    assert decision.approved == all(s.passed for s in evaluated)
    assert decision.reasons == [s.reason for s in evaluated if not s.passed]
    for s in decision.stages:
        assert (s.status == "passed") == (s.passed is True)
        assert (s.status == "failed") == (s.reason is not None)
    if candidate.transition_drawdown is None:
        assert not decision.approved
    # The honesty guard: an implausible result is never approved, and is held, not rejected.
    if not (candidate.sharpe <= T.max_plausible_sharpe + 1e-9) or not (
        candidate.win_rate <= T.max_plausible_win_rate + 1e-9
    ):
        assert not decision.approved
        if math.isfinite(candidate.sharpe) and math.isfinite(candidate.win_rate):
            assert LEAK_SUSPECTED in decision.reasons
            assert decide_action(decision, "headless", True) == "hold"
    if decision.approved:
        used = [candidate.sharpe, candidate.max_drawdown, candidate.transition_drawdown]
        assert all(v is not None and math.isfinite(v) for v in used)


def test_decision_round_trips_through_json() -> None:
    decision = evaluate_candidate(good(), T, incumbent=good(model_id="champ", sharpe=0.5))
    raw = msgspec.json.encode(decision)
    assert msgspec.json.decode(raw, type=PromotionDecision) == decision


@pytest.mark.parametrize(
    ("mode", "auto", "expected"),
    [
        ("manual", True, "record_only"),
        ("manual", False, "record_only"),
        ("supervised", True, "pending"),
        ("supervised", False, "pending"),
        ("headless", True, "promote"),
        ("headless", False, "pending"),
    ],
)
def test_decide_action_for_a_passing_candidate(mode: str, auto: bool, expected: str) -> None:
    decision = evaluate_candidate(good(), T)
    assert decide_action(decision, mode, auto) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["manual", "supervised", "headless"])
def test_failing_candidate_is_always_rejected(mode: str) -> None:
    decision = evaluate_candidate(good(trade_count=1), T)
    assert decide_action(decision, mode, True) == "reject"  # type: ignore[arg-type]


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        decide_action(evaluate_candidate(good(), T), "yolo", True)  # type: ignore[arg-type]


def test_status_for_action() -> None:
    assert status_for_action("promote") == "approved"
    assert status_for_action("pending") == "pending"
    assert status_for_action("record_only") == "recorded"
    assert status_for_action("reject") == "rejected"


def test_manifest_entry_is_json_ready() -> None:
    decision = evaluate_candidate(good(sharpe=math.nan), T)
    entry = manifest_entry(decision, "rejected", NOW, extra={"cycle_id": "c7"})
    text = msgspec.json.encode(entry).decode()
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text}"))
    assert loaded["id"] == f"m1@{NOW}"
    assert loaded["model_id"] == "m1"
    assert loaded["time"] == NOW
    assert loaded["status"] == "rejected"
    assert loaded["cycle_id"] == "c7"
    assert "decided_at" not in loaded and "backtest" not in loaded  # absent stays absent
    assert loaded["reasons"] == decision.reasons
    first = loaded["stages"][0]
    assert set(first) >= {"stage", "name", "value", "threshold", "passed", "status", "reason"}
    assert first["value"] is None
    assert first["passed"] is False


def test_manifest_entry_rejects_bad_input() -> None:
    decision = evaluate_candidate(good(), T)
    with pytest.raises(ValueError, match="overwrite"):
        manifest_entry(decision, "approved", NOW, extra={"status": "x"})
    with pytest.raises(ValueError, match="unknown field `cycle`"):
        manifest_entry(decision, "approved", NOW, extra={"cycle": 7})
    with pytest.raises(ValueError, match="backtest"):
        manifest_entry(decision, "approved", NOW, extra={"backtest": "not metrics"})
    with pytest.raises(ValueError, match="status"):
        manifest_entry(decision, "maybe", NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        manifest_entry(decision, "approved", datetime(2025, 1, 1))


def test_utc_iso_normalises() -> None:
    assert utc_iso("2025-01-13T14:00:00+02:00") == NOW
    assert utc_iso(datetime(2025, 1, 13, 12, tzinfo=UTC)) == NOW
    with pytest.raises(ValueError, match="ISO-8601"):
        utc_iso("yesterday")


def _manifest() -> list[ManifestEntry]:
    ok = evaluate_candidate(good(), T)
    bad = evaluate_candidate(good(model_id="m2", trade_count=2), T)
    return [
        manifest_entry(ok, "approved", "2025-01-10T00:00:00Z", entry_id="a"),
        manifest_entry(bad, "rejected", "2025-01-11T00:00:00Z", entry_id="b"),
        manifest_entry(ok, "pending", "2025-01-12T00:00:00Z", entry_id="c"),
        manifest_entry(ok, "pending", "2025-01-13T00:00:00Z", entry_id="d"),
    ]


def test_pending_entries() -> None:
    assert [e.id for e in pending_entries(_manifest())] == ["c", "d"]


@pytest.mark.parametrize(("approve", "status"), [(True, "approved"), (False, "rejected")])
def test_operator_decides_a_pending_entry(approve: bool, status: str) -> None:
    manifest = _manifest()
    before = msgspec.json.encode(manifest)
    after = apply_operator_decision(manifest, "c", approve, NOW)
    assert msgspec.json.encode(manifest) == before
    assert after[2].status == status
    assert after[2].decided_at == NOW
    assert [e.id for e in pending_entries(after)] == ["d"]


@pytest.mark.parametrize(
    ("entry_id", "match"), [("a", "only a pending or held"), ("b", "'rejected'")]
)
def test_only_pending_entries_can_be_decided(entry_id: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        apply_operator_decision(_manifest(), entry_id, True, NOW)


def test_unknown_or_ambiguous_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="no manifest entry"):
        apply_operator_decision(_manifest(), "zzz", True, NOW)
    doubled = [*_manifest(), _manifest()[2]]
    with pytest.raises(ValueError, match="share id"):
        apply_operator_decision(doubled, "c", True, NOW)


def test_mark_rolled_back_only_from_approved() -> None:
    after = mark_rolled_back(_manifest(), "a", NOW)
    assert after[0].status == "rolled_back"
    with pytest.raises(ValueError, match="only an approved"):
        mark_rolled_back(_manifest(), "c", NOW)


@pytest.mark.parametrize(
    "changes", [{"sharpe": 18.1, "total_return": 61.0}, {"win_rate": 0.93}]
)
def test_implausible_results_are_held_as_leak_suspected_in_every_mode(
    changes: dict[str, float],
) -> None:
    decision = evaluate_candidate(good(**changes), T)
    assert not decision.approved
    assert stage(decision, 8) == ("failed", LEAK_SUSPECTED)
    assert decision.stages[7].name == "plausibility"
    assert decision.stages[7].threshold == "sharpe<=5.0, win_rate<=0.8"
    for mode in ("manual", "supervised", "headless"):
        assert decide_action(decision, mode, True) == "hold"  # type: ignore[arg-type]
    assert status_for_action("hold") == "held"


def test_every_failing_stage_is_listed_with_the_leak() -> None:
    decision = evaluate_candidate(good(sharpe=7.0, trade_count=3, transition_drawdown=0.5), T)
    assert decision.reasons == [STAGE5_FAILED, STAGE6_FAILED, LEAK_SUSPECTED]
    assert decide_action(decision, "headless", True) == "hold"


def test_sharpe_exactly_at_the_plausibility_ceiling_passes() -> None:
    assert evaluate_candidate(good(sharpe=5.0, win_rate=0.8), T).approved
    strict = msgspec.structs.replace(T, max_plausible_sharpe=1.0)
    assert stage(evaluate_candidate(good(), strict), 8) == ("failed", LEAK_SUSPECTED)


def test_a_held_entry_awaits_the_operator_and_can_be_approved() -> None:
    held = evaluate_candidate(good(model_id="leaky", sharpe=18.0), T)
    manifest = [*_manifest(), manifest_entry(held, "held", NOW, entry_id="h")]
    assert [e.id for e in pending_entries(manifest)] == ["c", "d", "h"]
    after = apply_operator_decision(manifest, "h", True, NOW)
    assert after[-1].status == "approved"
    assert after[-1].reasons == [LEAK_SUSPECTED]
    with pytest.raises(ValueError, match="only a pending or held"):
        apply_operator_decision(after, "h", False, NOW)


def test_deflated_sharpe_stage_judges_the_probability_and_never_passes_unmeasured() -> None:
    decision = evaluate_candidate(good(deflated_sharpe=0.7, trials=12), T)
    assert stage(decision, 9) == ("failed", STAGE9_FAILED)
    assert decision.stages[8].value == 0.7 and decision.stages[8].threshold == 0.95
    assert decision.stages[8].note == "trials=12"
    assert decide_action(decision, "headless", True) == "reject"
    assert stage(evaluate_candidate(good(deflated_sharpe=0.95), T), 9) == ("passed", None)
    unmeasured = evaluate_candidate(good(deflated_sharpe=None, trials=None), T)
    assert unmeasured.stages[8].status == "skipped" and unmeasured.stages[8].passed is None
    assert unmeasured.stages[8].note == "not_measured"
    assert stage(evaluate_candidate(good(deflated_sharpe=math.nan), T), 9)[0] == "failed"
