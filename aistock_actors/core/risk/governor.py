"""The RiskGovernor's state machine, pure: when adapted limits apply, wait, or are superseded.

One :func:`govern` call per risk step, in this order:

1. **Config baseline.** The limits in the config file are the baseline. When the operator changes
   them ("manually revert risk limits in next config update", incident scenario 4) the limits in
   force are reset to the new config values (``config_changed``) and any pending change is dropped.
2. **Operator decisions** on the pending expansion (``--approve risk-<n>`` / ``--reject
   risk-<n>``). An approval applies the proposal only if the limits it was computed from are still
   in force; otherwise the proposal is ``superseded`` (performance moved on).
3. **New evidence only.** The policy (:func:`~aistock_actors.core.risk.policy.propose_limits`)
judges the
   paper ledger once per new equity point: cycles that add no bar (an hourly daemon on daily
   bars) change nothing, so a single bad week cannot ratchet the limits down 24 times a day.
4. **Apply or hold.** A tightening (or an unchanged/clamped result) applies at once, in every
   mode: it is the safe direction. An expansion applies at once in ``headless`` mode; in
   ``supervised`` and ``manual`` mode it becomes the pending change ``risk-<n>`` and waits for the
   operator. The same proposal is not re-opened every cycle: while the limits stay the same it
   keeps its id, and a rejected one stays rejected.

Every applied change is an event ``risk_limits_adjusted`` with ``before``, ``after`` and
``reason`` (``tightened_on_poor_performance``, ``expanded_on_strong_performance``,
``config_changed``, ``expansion_approved_by_operator``) for the audit log, and is kept in the
bounded ``history``. The allocator's output is stored apart (``effective``) and never fed back.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from aistock_actors.core.risk.policy import (
    PerformanceSnapshot,
    RiskDecision,
    RiskLimits,
    RiskPolicyParams,
    clamp_to_ceilings,
    is_tightening,
    propose_limits,
)

HISTORY_LIMIT = 500
"""Applied changes kept in ``limits.json`` (the audit log keeps all of them)."""
RISK_LIMITS_ADJUSTED = "risk_limits_adjusted"
RISK_CHANGE_PENDING = "risk_change_pending"
RISK_CHANGE_SUPERSEDED = "risk_change_superseded"
RISK_CHANGE_REJECTED = "risk_change_rejected"
Mode = Literal["manual", "supervised", "headless"]


class RiskChange(msgspec.Struct, frozen=True, kw_only=True):
    """One applied change of the limits in force."""

    at: str
    cycle_id: str
    before: RiskLimits
    after: RiskLimits
    reason: str
    reasons: list[str] = []
    applied_by: str = "policy"
    """``policy`` (automatic), ``operator`` (approved) or ``config`` (baseline changed)."""


class PendingRiskChange(msgspec.Struct, frozen=True, kw_only=True):
    """An expansion waiting for the operator (supervised and manual modes)."""

    id: str
    """``risk-<n>``: what ``--approve`` and ``--reject`` take."""
    proposed_at: str
    cycle_id: str
    before: RiskLimits
    after: RiskLimits
    reasons: list[str]
    status: Literal["pending", "rejected"] = "pending"


class RiskState(msgspec.Struct, frozen=True, kw_only=True):
    """``state/risk/limits.json``: the limits in force and how they got there."""

    limits: RiskLimits
    """The adaptive policy's limits in force (fed back into the policy next time)."""
    baseline: RiskLimits
    """The config's limits when last applied; a different config resets ``limits``."""
    effective: RiskLimits
    """``limits`` after the regime allocator (equal to ``limits`` in shadow mode): what trades."""
    regime: str = "unknown"
    allocator_mode: str = "shadow"
    evaluated_through: str | None = None
    """Timestamp of the newest equity point judged; None = never judged."""
    pending: PendingRiskChange | None = None
    next_pending: int = 1
    history: list[RiskChange] = []
    updated_at: str = ""


class OperatorDecision(msgspec.Struct, frozen=True, kw_only=True):
    """An operator's answer to a pending change (``state/risk/decisions/<id>.json``)."""

    id: str
    decision: Literal["approved", "rejected"]
    decided_at: str
    by: str = "operator"


class GovernorEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Something the actor audits."""

    action: str
    details: dict[str, Any]


class Governed(msgspec.Struct, frozen=True, kw_only=True):
    """Result of :func:`govern`."""

    state: RiskState
    events: list[GovernorEvent]
    decision: RiskDecision | None
    """The policy's proposal this step (None when there was no new evidence)."""
    summary: str
    """One word for the step's reply: ``tightened``, ``expanded``, ``pending``, ``unchanged``..."""


def initial_state(config_limits: RiskLimits, now: str = "") -> RiskState:
    """The state before any adaptation: the config's limits, clamped to the ceilings."""
    base = clamp_to_ceilings(config_limits)
    return RiskState(limits=base, baseline=base, effective=base, updated_at=now)


def _limits_dict(limits: RiskLimits) -> dict[str, float]:
    return {
        "max_position_fraction": limits.max_position_fraction,
        "max_notional_per_symbol": limits.max_notional_per_symbol,
        "max_gross_exposure": limits.max_gross_exposure,
    }


class _Run:
    """Mutable scratch of one :func:`govern` call."""

    def __init__(self, state: RiskState, cycle_id: str, now: str) -> None:
        self.state = state
        self.cycle_id = cycle_id
        self.now = now
        self.events: list[GovernorEvent] = []
        self.summary = "unchanged"

    def event(self, action: str, **details: Any) -> None:
        self.events.append(
            GovernorEvent(action=action, details={"cycle_id": self.cycle_id, **details})
        )

    def apply(self, after: RiskLimits, reason: str, reasons: list[str], by: str) -> None:
        before = self.state.limits
        after = clamp_to_ceilings(after)
        if after == before:
            return
        change = RiskChange(
            at=self.now,
            cycle_id=self.cycle_id,
            before=before,
            after=after,
            reason=reason,
            reasons=reasons,
            applied_by=by,
        )
        history = [*self.state.history, change][-HISTORY_LIMIT:]
        self.state = msgspec.structs.replace(self.state, limits=after, history=history)
        self.event(
            RISK_LIMITS_ADJUSTED,
            before=_limits_dict(before),
            after=_limits_dict(after),
            reason=reason,
            reasons=reasons,
            applied_by=by,
        )
        self.summary = "tightened" if is_tightening(before, after) else "expanded"

    def drop_pending(self, why: str) -> None:
        pending = self.state.pending
        if pending is not None and pending.status == "pending":
            self.event(RISK_CHANGE_SUPERSEDED, id=pending.id, why=why)
        self.state = msgspec.structs.replace(self.state, pending=None)


def _config_baseline(run: _Run, config_limits: RiskLimits) -> None:
    base = clamp_to_ceilings(config_limits)
    if base == run.state.baseline:
        return
    run.state = msgspec.structs.replace(run.state, baseline=base)
    run.apply(base, "config_changed", ["config_changed"], "config")
    run.drop_pending("config_changed")


def _operator_decisions(run: _Run, decisions: list[OperatorDecision]) -> None:
    pending = run.state.pending
    for decision in decisions:
        if pending is None or decision.id != pending.id or pending.status != "pending":
            continue
        if decision.decision == "rejected":
            run.state = msgspec.structs.replace(
                run.state, pending=msgspec.structs.replace(pending, status="rejected")
            )
            run.event(RISK_CHANGE_REJECTED, id=pending.id, by=decision.by)
            run.summary = "rejected"
        elif pending.before == run.state.limits:
            reasons = ["expansion_approved_by_operator", *pending.reasons]
            run.apply(pending.after, "expansion_approved_by_operator", reasons, "operator")
            run.state = msgspec.structs.replace(run.state, pending=None)
        else:
            run.drop_pending("limits_changed_since_proposal")
        return


def _hold_for_approval(run: _Run, decision: RiskDecision) -> None:
    pending = run.state.pending
    after = clamp_to_ceilings(decision.after)
    if pending is not None and pending.before == run.state.limits and pending.after == after:
        run.summary = "pending" if pending.status == "pending" else "rejected"
        return
    run.drop_pending("new_proposal")
    seq = run.state.next_pending
    new = PendingRiskChange(
        id=f"risk-{seq}",
        proposed_at=run.now,
        cycle_id=run.cycle_id,
        before=run.state.limits,
        after=after,
        reasons=decision.reasons,
    )
    run.state = msgspec.structs.replace(run.state, pending=new, next_pending=seq + 1)
    run.event(
        RISK_CHANGE_PENDING,
        id=new.id,
        before=_limits_dict(new.before),
        after=_limits_dict(new.after),
        reasons=new.reasons,
        approve_with=f"--approve {new.id}",
    )
    run.summary = "pending"


def govern(
    state: RiskState,
    *,
    config_limits: RiskLimits,
    perf: PerformanceSnapshot,
    evidence: str,
    params: RiskPolicyParams,
    mode: Mode,
    decisions: list[OperatorDecision],
    cycle_id: str,
    now: str,
) -> Governed:
    """One risk step (see the module docstring); ``evidence`` is the newest equity timestamp."""
    run = _Run(state, cycle_id, now)
    _config_baseline(run, config_limits)
    _operator_decisions(run, decisions)
    decision: RiskDecision | None = None
    if evidence == run.state.evaluated_through:
        if run.summary == "unchanged" and not run.events:
            run.summary = "no_new_observations"
    else:
        decision = propose_limits(run.state.limits, perf, params)
        run.state = msgspec.structs.replace(run.state, evaluated_through=evidence)
        after = clamp_to_ceilings(decision.after)
        expanding = after != run.state.limits and not is_tightening(run.state.limits, after)
        if expanding and mode != "headless":
            _hold_for_approval(run, decision)
        elif after != run.state.limits:
            run.apply(after, decision.reasons[0], decision.reasons, "policy")
            run.drop_pending("limits_changed")
    final = msgspec.structs.replace(run.state, updated_at=now)
    return Governed(state=final, events=run.events, decision=decision, summary=run.summary)
