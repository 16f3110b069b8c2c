"""Operator side of risk and paper trading: ``--status`` lines, ``--approve risk-<n>``, and the
acknowledgement of a drawdown halt by ``--unkill`` / ``--resume``.

Read-only except for the two operator files it may write: a decision file under
``state/risk/decisions/`` and the acknowledgement in ``state/paper/drawdown_halt.json``; the
actors apply both at their next step. Every change is audited with actor ``operator``.
"""

from __future__ import annotations

from aistock_actors.config import LoadedConfig
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.audit_anchor import anchor_for
from aistock_actors.store.ledger import acknowledge_drawdown_halt
from aistock_actors.store.paper_status import PaperStatus, paper_status
from aistock_actors.store.risk import RiskStatus, decide_pending, is_risk_id, risk_status

OPERATOR = "operator"
__all__ = [
    "PaperStatus",
    "RiskStatus",
    "acknowledge_drawdown",
    "decide_risk",
    "is_risk_id",
    "paper_status",
    "render_trading",
    "risk_status",
]


def _audit(loaded: LoadedConfig) -> AuditLog:
    return AuditLog(loaded.state_dir / "audit" / "log.jsonl", anchor=anchor_for(loaded))


def decide_risk(
    loaded: LoadedConfig, change_id: str, *, approve: bool, actor: str = OPERATOR
) -> tuple[str, bool]:
    """``--approve risk-<n>`` / ``--reject risk-<n>``: record the decision; ``(message, ok)``.

    ``actor`` is who the audit log names: ``operator`` (the CLI) or ``web`` (the console)."""
    message, ok = decide_pending(loaded.state_dir, change_id, approve)
    if ok:
        action = (
            "risk_change_approved_by_operator" if approve else "risk_change_rejected_by_operator"
        )
        _audit(loaded).append(action, actor, {"id": change_id})
    return message, ok


def acknowledge_drawdown(loaded: LoadedConfig, actor: str = OPERATOR) -> str:
    """Acknowledge a drawdown halt (part of ``--unkill`` and ``--resume``); "" if there was none."""
    if not acknowledge_drawdown_halt(loaded.state_dir):
        return ""
    _audit(loaded).append("drawdown_halt_acknowledged_by_operator", actor, {})
    return "; drawdown halt acknowledged: the drawdown is measured from the current equity on"


def _money(value: float) -> str:
    return f"${value:,.2f}"


def render_trading(paper: PaperStatus | None, risk: RiskStatus | None) -> list[str]:
    """The ``--status`` lines for the paper account and the risk limits."""
    lines: list[str] = []
    if paper is None:
        lines.append("paper account:        none yet (no trade step has run)")
    else:
        lines.append(
            f"paper equity:         {_money(paper.equity)} (cash {_money(paper.cash)}, start "
            f"{_money(paper.initial_cash)}), drawdown {paper.drawdown:.2%}, as of "
            f"{paper.as_of or 'never'}, model {paper.model_id or 'none'}"
        )
        if paper.drawdown_halt is not None:
            state = "acknowledged" if paper.drawdown_halt.acknowledged else "IN FORCE"
            lines.append(
                f"drawdown halt:        {state}: {paper.drawdown_halt.drawdown:.2%} > "
                f"{paper.drawdown_halt.threshold:.2%} at {paper.drawdown_halt.tripped_at}"
            )
        lines.append(
            f"positions:            {len(paper.positions)}, {paper.open_orders} open order(s), "
            f"{paper.fills} fill(s) in the ledger"
        )
        for pos in paper.positions:
            last = f"{pos.last_price:.2f}" if pos.last_price is not None else "?"
            lines.append(
                f"  {pos.symbol:<10}{pos.quantity:>14.2f} @ {last:>10} (entry "
                f"{pos.entry_price:.2f})  {_money(pos.value):>16}  {pos.weight:>7.2%}"
            )
    if risk is None:
        lines.append("risk limits:          config values (no risk step has run)")
        return lines
    lines.append(
        f"risk limits:          regime {risk.regime}, allocator {risk.allocator_mode}; "
        f"{risk.changes} change(s), last: {risk.last_change or 'none'}"
    )
    for view in risk.limits:
        ceiling = f"{view.ceiling:g}" if view.ceiling is not None else "none"
        lines.append(
            f"  {view.name:<24}{view.value:>14g} (trading at {view.effective:g}), ceiling {ceiling}"
        )
    if risk.pending is not None:
        p = risk.pending
        lines.append(
            f"pending risk change:  {p.id}: max_position_fraction "
            f"{p.before.max_position_fraction:g} -> {p.after.max_position_fraction:g} "
            f"(--approve {p.id} / --reject {p.id})"
        )
    return lines
