"""The risk limits on disk: ``state/risk/limits.json`` and the operator's decisions.

``limits.json`` (a :class:`~aistock_actors.core.risk.governor.RiskState`) holds the limits in force,
the allocator's effective limits, the pending expansion (supervised mode) and the bounded history
of changes; only the RiskGovernor writes it. The operator never edits it: ``--approve risk-<n>``
and ``--reject risk-<n>`` each write one file ``state/risk/decisions/risk-<n>.json``, which the
RiskGovernor applies (re-checked against the ceilings and the limits then in force) at its next
step and then removes. So the CLI and a running daemon never write the same file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.governor import OperatorDecision, PendingRiskChange, RiskState
from aistock_actors.core.risk.policy import RiskLimits, clamp_to_ceilings, exposure_scale
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json, backup_path
from aistock_actors.store.ledger import utc_now
from aistock_actors.store.state_file import load_state

if TYPE_CHECKING:
    from aistock_actors.config.loading import LoadedConfig

RISK_DIR = "risk"
RISK_ID = re.compile(r"risk-[0-9]{1,9}")


class _UnrecoverableError(Exception):
    """``limits.json`` and its ``.bak`` are both unreadable (already alerted critical)."""


def _unrecoverable() -> RiskState:
    raise _UnrecoverableError


def risk_dir(state_dir: Path) -> Path:
    """``state/risk``."""
    return Path(state_dir) / RISK_DIR


def limits_path(state_dir: Path) -> Path:
    """``state/risk/limits.json``."""
    return risk_dir(state_dir) / "limits.json"


def decisions_dir(state_dir: Path) -> Path:
    """``state/risk/decisions``."""
    return risk_dir(state_dir) / "decisions"


def load_risk_state(
    state_dir: Path, alerts: AlertSink | None, default: RiskState | None = None
) -> RiskState | None:
    """The persisted limits (from ``.bak`` if damaged); ``default`` on the first run."""
    path = limits_path(state_dir)
    if not path.exists() and not backup_path(path).exists():
        return default
    try:
        return load_state(path, RiskState, _unrecoverable, alerts, actor="risk_governor")
    except _UnrecoverableError:
        return default


def save_risk_state(state_dir: Path, state: RiskState) -> None:
    """Write ``limits.json`` atomically (the previous version becomes ``.bak``)."""
    atomic_write_json(limits_path(state_dir), state)


def trading_limits(state_dir: Path, fallback: RiskLimits, alerts: AlertSink | None) -> RiskLimits:
    """The limits the PaperTrader trades under: the effective (post-allocator) limits in force,
    else ``fallback`` (the config's), always clamped to the hard ceilings."""
    state = load_risk_state(state_dir, alerts)
    if state is None:
        return clamp_to_ceilings(fallback)
    effective = state.effective
    # #17: the governor and the allocator never raise gross exposure above the config's, so a
    # file that does was edited by hand: trade at the config's value and say so.
    if effective.max_gross_exposure > fallback.max_gross_exposure * (1 + 1e-9):
        if alerts is not None:
            alerts.raise_alert(
                "error",
                "risk_limits_above_config",
                f"{limits_path(state_dir)}: max_gross_exposure {effective.max_gross_exposure:g} is "
                f"above the config's risk.max_gross_exposure {fallback.max_gross_exposure:g} "
                "(the file was edited); trading at the config's value",
                actor="paper_trader",
                details={"file": str(limits_path(state_dir)), "key": "max_gross_exposure",
                         "file_value": effective.max_gross_exposure,
                         "config_value": fallback.max_gross_exposure},
            )
        effective = msgspec.structs.replace(
            effective, max_gross_exposure=fallback.max_gross_exposure
        )
    return clamp_to_ceilings(effective)


def read_decisions(state_dir: Path) -> list[OperatorDecision]:
    """Every readable decision file, oldest first (unreadable ones are skipped)."""
    folder = decisions_dir(state_dir)
    if not folder.is_dir():
        return []
    found: list[OperatorDecision] = []
    for path in sorted(folder.glob("risk-*.json")):
        try:
            found.append(msgspec.json.decode(path.read_bytes(), type=OperatorDecision))
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            continue
    return sorted(found, key=lambda d: d.decided_at)


def remove_decisions(state_dir: Path, decisions: list[OperatorDecision]) -> None:
    """Delete processed decision files."""
    for decision in decisions:
        (decisions_dir(state_dir) / f"{decision.id}.json").unlink(missing_ok=True)


def is_risk_id(text: str) -> bool:
    """Whether ``text`` names a pending risk change (``risk-<n>``)."""
    return RISK_ID.fullmatch(text) is not None


def decide_pending(state_dir: Path, change_id: str, approve: bool) -> tuple[str, bool]:
    """Operator: approve or reject the pending risk change ``change_id``; ``(message, ok)``.

    Refused (ok False) when no such change is pending. The RiskGovernor applies the decision at
    its next step, inside the hard ceilings and only if the limits have not moved meanwhile.
    """
    state = load_risk_state(state_dir, None)
    pending = state.pending if state is not None else None
    if pending is None or pending.id != change_id or pending.status != "pending":
        now = f"pending now: {pending.id}" if pending and pending.status == "pending" else "none"
        return f"no pending risk change {change_id} ({now})", False
    verb: Literal["approved", "rejected"] = "approved" if approve else "rejected"
    decision = OperatorDecision(id=change_id, decision=verb, decided_at=utc_now())
    atomic_write_json(decisions_dir(state_dir) / f"{change_id}.json", decision, keep_backup=False)
    after = clamp_to_ceilings(pending.after)
    return (
        f"risk change {change_id} {verb}: max_position_fraction "
        f"{pending.before.max_position_fraction:.4f} -> {after.max_position_fraction:.4f} "
        "(applied by the RiskGovernor at its next step)"
        if approve
        else f"risk change {change_id} rejected; the limits stay as they are",
        True,
    )


class LimitView(msgspec.Struct, frozen=True, kw_only=True):
    """One limit against its hard ceiling."""

    name: str
    value: float
    effective: float
    ceiling: float | None


class RiskStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The risk limits as ``--status`` shows them."""

    limits: list[LimitView]
    regime: str
    allocator_mode: str
    pending: PendingRiskChange | None
    last_change: str
    """``<time> <reason>`` of the last applied change ("" if none)."""
    changes: int


def risk_status(state_dir: Path) -> RiskStatus | None:
    """Read-only summary of ``limits.json`` (None before the first risk step)."""
    state = load_risk_state(state_dir, None)
    if state is None:
        return None
    pairs = (
        ("max_position_fraction", HARD_CEILING_POSITION_FRACTION),
        ("max_notional_per_symbol", HARD_CEILING_NOTIONAL_CAP),
        ("max_gross_exposure", None),
    )
    views = [
        LimitView(
            name=name,
            value=float(getattr(state.limits, name)),
            effective=float(getattr(state.effective, name)),
            ceiling=ceiling,
        )
        for name, ceiling in pairs
    ]
    last = state.history[-1] if state.history else None
    return RiskStatus(
        limits=views,
        regime=state.regime,
        allocator_mode=state.allocator_mode,
        pending=state.pending if state.pending and state.pending.status == "pending" else None,
        last_change=f"{last.at} {last.reason}" if last else "",
        changes=len(state.history),
    )


def allowed_exposure_scale(loaded: LoadedConfig) -> float:
    """#17: the share of the configured exposure the limits in force allow (1.0 before the
    RiskGovernor's first step); the rollback rule scales the backtest's expectation by it."""
    risk = loaded.config.risk
    configured = RiskLimits(
        max_position_fraction=risk.max_position_fraction,
        max_notional_per_symbol=risk.max_notional_per_symbol,
        max_gross_exposure=risk.max_gross_exposure,
    )
    state = load_risk_state(loaded.state_dir, None)
    return exposure_scale(state.effective, configured) if state is not None else 1.0
