"""RiskGovernor: adapts the risk limits to the paper portfolio's recent performance (step ``risk``).

Each step it reads the ledger the PaperTrader persisted (``state/paper/ledger.json``; never a
message from another actor), judges its recent performance with the manual's rules
(:func:`~aistock_actors.core.risk.policy.propose_limits`: several tightening triggers multiply,
never
below ``headless.min_risk_floor``, never above the hard ceilings) and applies or holds the result
as :mod:`aistock_actors.core.risk.governor` documents: a tightening at once, an expansion at once in
``headless`` mode and after ``--approve risk-<n>`` otherwise. With
``headless.enable_auto_risk_adjustment`` off the limits stay at the config's values.

Then the regime allocator (T8) runs on the policy's limits: ``allocator.mode = shadow`` audits
what it would change (``allocator_shadow_decision``) and changes nothing; ``full`` stores its
stricter limits as ``effective`` (what the PaperTrader trades under). The allocator's output is
never fed back into the policy, so a regime cut cannot compound cycle after cycle.

Everything lands in ``state/risk/limits.json`` (atomic, ``.bak``) before the reply; every change
is audited as ``risk_limits_adjusted`` with before, after and reason.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.core.market.live_index import LiveMarketIndex
from aistock_actors.core.risk.allocator import AllocationDecision, allocate
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.governor import (
    RISK_CHANGE_PENDING,
    RISK_LIMITS_ADJUSTED,
    Governed,
    RiskState,
    govern,
    initial_state,
)
from aistock_actors.core.risk.policy import PerformanceSnapshot, RiskLimits, RiskPolicyParams
from aistock_actors.core.trading.ledger import LedgerState, new_ledger, performance_snapshot
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.control import KillSwitchTripped
from aistock_actors.messages.risk import AssessRisk, RiskAssessed, RiskGovernorInbox
from aistock_actors.store.bars import BarStore
from aistock_actors.store.fence import Fence
from aistock_actors.store.ledger import PaperStore, utc_now
from aistock_actors.store.risk import (
    load_risk_state,
    read_decisions,
    remove_decisions,
    risk_dir,
    save_risk_state,
)

log = logging.getLogger(__name__)


def _dump(limits: RiskLimits) -> dict[str, Any]:
    return msgspec.to_builtins(limits)  # type: ignore[no-any-return]


class RiskGovernor(SupervisedActor):
    """Owns ``state/risk/``; reads the paper ledger and the bar store, never writes them."""

    child_name = "risk_governor"
    inbox = RiskGovernorInbox

    def load_state(self) -> None:
        cfg = self.ctx.config.config
        self.state_dir = self.ctx.config.state_dir
        self.config_limits = RiskLimits(
            max_position_fraction=cfg.risk.max_position_fraction,
            max_notional_per_symbol=cfg.risk.max_notional_per_symbol,
            max_gross_exposure=cfg.risk.max_gross_exposure,
        )
        self.params = RiskPolicyParams(
            enable_auto_adjustment=cfg.headless.enable_auto_risk_adjustment,
            max_risk_increase_pct=cfg.headless.max_risk_increase_pct,
            min_risk_floor=cfg.headless.min_risk_floor,
            min_observations=cfg.risk.min_observations,
        )
        self.bars = BarStore(self.state_dir / "bars")
        self.market = LiveMarketIndex()  # the regime's index, extended by each cycle's new bars
        self.paper = PaperStore(self.state_dir, None, cfg.paper.initial_cash)
        default = initial_state(self.config_limits, utc_now())
        state = load_risk_state(self.state_dir, self.ctx.alerts, default)
        self.state: RiskState = state if state is not None else default
        self.fence = Fence(
            risk_dir(self.state_dir) / "owner.json", self.ctx.name, self.ctx.generation
        )
        self.fence.claim()

    def handle(self, request: Request) -> Reply:
        match request:
            case AssessRisk():
                return self.assess(request)
            case _:
                return super().handle(request)

    def assess(self, request: AssessRisk) -> Reply:
        """One risk step: govern, allocate, persist, audit, reply."""
        cfg = self.ctx.config.config
        ledger = self._ledger()
        window = cfg.risk.performance_window  # older points from the archive when needed (#18)
        perf = performance_snapshot(ledger, window,
                                    curve=self.paper.equity.curve_tail(window + 1, ledger))
        evidence = ledger.equity_curve[-1][0] if ledger.equity_curve else ""
        decisions = read_decisions(self.state_dir)
        governed = govern(
            self.state,
            config_limits=self.config_limits,
            perf=perf,
            evidence=evidence,
            params=self.params,
            mode=cfg.mode,
            decisions=decisions,
            cycle_id=request.cycle_id,
            now=utc_now(),
        )
        regime = self.market.regime(self.bars.readable_arrays())
        allocation = allocate(regime, None, governed.state.limits, cfg.allocator)
        state = msgspec.structs.replace(
            governed.state,
            effective=allocation.applied_limits,
            regime=regime,
            allocator_mode=allocation.mode,
        )
        breach = self._ceiling_breach(state)
        if breach:
            return self._halt_on_breach(request, breach)
        self.fence.check()
        save_risk_state(self.state_dir, state)
        self.state = state
        remove_decisions(self.state_dir, decisions)
        self._audit(governed, allocation, request.cycle_id, perf_details(perf))
        return self._reply(request, governed, state)

    def _ledger(self) -> LedgerState:
        # Read-only: the PaperTrader owns the file and alerts about its damage itself.
        if not self.paper.ledger_path.exists():
            return new_ledger(self.paper.initial_cash)
        return self.paper.load_ledger()

    @staticmethod
    def _ceiling_breach(state: RiskState) -> str:
        """Limits above a hard ceiling ("" if none): clamping everywhere should make it
        impossible, so it is treated as the manual says: CRITICAL BUG, halt immediately."""
        for name, limits in (("limits", state.limits), ("effective", state.effective)):
            if (
                not limits.max_position_fraction <= HARD_CEILING_POSITION_FRACTION
                or not limits.max_notional_per_symbol <= HARD_CEILING_NOTIONAL_CAP
            ):
                return f"{name} {limits} above the hard ceilings"
        return ""

    def _halt_on_breach(self, request: AssessRisk, breach: str) -> Reply:
        self.ctx.halt_flag.set()
        self.ctx.alerts.raise_alert(
            "critical",
            "risk_ceiling_breach",
            f"CRITICAL BUG: {breach}; halting",
            actor=self.ctx.name,
        )
        self.ctx.report(
            KillSwitchTripped(
                source="risk_ceiling_breach",
                detail=breach,
                actor=self.ctx.name,
                generation=self.ctx.generation,
            )
        )
        return self.fail(request, "risk_ceiling_breach", breach)

    def _alert_change(self, action: str, details: dict[str, Any]) -> None:
        """A limit change (or one waiting for ``--approve``) is a warning alert, so it reaches
        the webhooks: the manual's "report all decisions to alerts"."""
        before, after = details.get("before") or {}, details.get("after") or {}
        key = "max_position_fraction"
        def shown(limits: object) -> str:
            value = limits.get(key) if isinstance(limits, dict) else None
            return f"{value:.4g}" if isinstance(value, (int, float)) else "?"

        moved = f"{key} {shown(before)} -> {shown(after)}"
        why = details.get("reason") or ", ".join(map(str, details.get("reasons") or []))
        waiting = f" (waits for --approve {details.get('id')})" if action == RISK_CHANGE_PENDING \
            else ""
        self.ctx.alerts.raise_alert(
            "warning", action, f"{action}: {why}: {moved}{waiting}",
            actor=self.ctx.name, details=details)

    def _audit(
        self,
        governed: Governed,
        allocation: AllocationDecision,
        cycle_id: str,
        perf: dict[str, float | int],
    ) -> None:
        for event in governed.events:
            details = dict(event.details)
            if event.action == RISK_LIMITS_ADJUSTED:
                details["performance"] = perf
            self.ctx.audit.append(event.action, self.ctx.name, details)
            if event.action in (RISK_LIMITS_ADJUSTED, RISK_CHANGE_PENDING):
                self._alert_change(event.action, details)
        shadow = allocation.mode == "shadow"
        self.ctx.audit.append(
            "allocator_shadow_decision" if shadow else "allocator_decision",
            self.ctx.name,
            {
                "cycle_id": cycle_id,
                "regime": allocation.regime,
                "profile": allocation.profile_name,
                "mode": allocation.mode,
                "limits": _dump(governed.state.limits),
                "proposed": _dump(allocation.proposed_limits),
                "applied": _dump(allocation.applied_limits),
                "would_change": allocation.would_change,
                "changed": allocation.changed,
                "reasons": allocation.reasons,
            },
        )

    def _reply(self, request: AssessRisk, governed: Governed, state: RiskState) -> RiskAssessed:
        decision = governed.decision
        reason = decision.reasons[0] if decision is not None else governed.summary
        pending = state.pending
        return RiskAssessed(
            request_id=request.request_id,
            outcome=governed.summary,
            reason=reason,
            max_position_fraction=state.limits.max_position_fraction,
            limits=state.limits,
            effective_limits=state.effective,
            regime=state.regime,
            allocator_mode=state.allocator_mode,
            pending_id=pending.id if pending is not None and pending.status == "pending" else "",
            adjustments=sum(1 for e in governed.events if e.action == RISK_LIMITS_ADJUSTED),
        )


def perf_details(perf: PerformanceSnapshot) -> dict[str, float | int]:
    """The performance snapshot as audit details."""
    return {
        "sharpe": perf.sharpe,
        "drawdown": perf.drawdown,
        "win_rate": perf.win_rate,
        "observations": perf.observations,
    }
