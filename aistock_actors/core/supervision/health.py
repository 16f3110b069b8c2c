"""Health, pure: the manual's health report, its list of issues, and the ``/healthz`` verdict.

Everything here is a function of a :class:`~aistock_actors.runtime.telemetry.TelemetrySnapshot` and
the current time, so the HealthReporter, the HTTP server and the tests agree by construction.

Health report fields (POSTed to ``headless.external_health_report_url``; counters are totals
since the daemon started, so a lost report loses nothing):

``timestamp`` ISO-8601 UTC · ``healthy`` (no issues) · ``issues`` · ``bars_added`` ·
``promotions`` · ``risk_adjustments`` · ``trades_executed`` · ``kill_switch`` · ``halted`` ·
``consecutive_failures`` · ``active_model`` · plus ``halt_reason``, ``last_cycle_outcome``,
``last_success_at`` and ``open_critical_alerts`` for context, and ``audit_head`` (#17: the sha256
of the audit log's last record, so a monitor can see the chain only ever grows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)

if TYPE_CHECKING:
    from aistock_actors.runtime.telemetry import TelemetrySnapshot

HARD_CEILINGS: dict[str, float] = {
    "max_position_fraction": HARD_CEILING_POSITION_FRACTION,
    "max_notional_per_symbol": HARD_CEILING_NOTIONAL_CAP,
}
"""Limits with a hard ceiling: a live limit above it is a breach (the manual's CRITICAL BUG)."""

HEALTH_REPORT_FIELDS: tuple[str, ...] = (
    "timestamp",
    "healthy",
    "issues",
    "bars_added",
    "promotions",
    "risk_adjustments",
    "trades_executed",
    "kill_switch",
    "halted",
    "consecutive_failures",
    "active_model",
)
"""The documented fields every report carries (the manual's six plus ours)."""


def iso_utc(ts: float | None) -> str | None:
    """Unix time as ``2025-01-13T12:00:00Z`` (None stays None)."""
    if ts is None:
        return None
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


def health_issues(
    snap: TelemetrySnapshot,
    now: float,
    max_data_age_s: float,
    *,
    max_drawdown: float | None = None,
    data_age: Callable[[float, float], float] | None = None,
    market_now: float | None = None,
) -> list[str]:
    """What is wrong right now, one short ``code: explanation`` string per issue.

    ``data_age(since, now)`` measures the age of the newest bar (e.g. open-market seconds on the
    market's calendar, so weekends and holidays raise nothing); default: wall-clock seconds.
    ``market_now`` (epoch seconds; a replay drives it): the age is market time since the last
    cycle that added bars (``snap.last_bar_market_at``), none before the replay's first one.
    """
    issues: list[str] = []
    if snap.halted:
        issues.append(f"halted: {snap.halt_reason or 'unknown reason'}")
    if snap.kill_switch:
        issues.append("kill_switch: active")
    if market_now is not None:  # a replay: market time on both ends
        reference = snap.last_bar_market_at if snap.last_bar_market_at is not None else market_now
        until = market_now
    else:
        reference = (snap.last_bar_added_at if snap.last_bar_added_at is not None
                     else snap.started_at)
        until = now
    age = until - reference if data_age is None else data_age(reference, until)
    if age > max_data_age_s:
        market = "" if data_age is None and market_now is None else " of market time"
        issues.append(
            f"data_stale: no new bar for {age:.0f}s{market} (limit {max_data_age_s:.0f}s)"
        )
    if max_drawdown is not None and snap.drawdown is not None and snap.drawdown > max_drawdown:
        issues.append(f"risk_breach: paper drawdown {snap.drawdown:.4f} above {max_drawdown:.4f}")
    for name, ceiling in HARD_CEILINGS.items():
        value = snap.risk_limits.get(name)
        if value is not None and value > ceiling:
            issues.append(f"risk_breach: {name} {value:g} above the hard ceiling {ceiling:g}")
    if snap.open_critical_alerts > 0:
        issues.append(f"critical_alerts: {snap.open_critical_alerts} open")
    return issues


def build_health_report(
    snap: TelemetrySnapshot,
    now: float,
    max_data_age_s: float,
    *,
    max_drawdown: float | None = None,
    data_age: Callable[[float, float], float] | None = None,
    market_now: float | None = None,
) -> dict[str, Any]:
    """The report the HealthReporter POSTs (see the module docstring for the fields);
    ``market_now``: see :func:`health_issues`."""
    issues = health_issues(snap, now, max_data_age_s, max_drawdown=max_drawdown,
                           data_age=data_age, market_now=market_now)
    return {
        "timestamp": iso_utc(now),
        "healthy": not issues,
        "issues": issues,
        "bars_added": snap.bars_added_total,
        "promotions": snap.promotions,
        "risk_adjustments": snap.risk_adjustments,
        "trades_executed": snap.trades_executed,
        "kill_switch": snap.kill_switch,
        "halted": snap.halted,
        "consecutive_failures": snap.consecutive_failures,
        "active_model": snap.active_model,
        "halt_reason": snap.halt_reason,
        "last_cycle_outcome": snap.last_cycle_outcome,
        "last_success_at": iso_utc(snap.last_success_at),
        "open_critical_alerts": snap.open_critical_alerts,
        "audit_head": snap.audit_head,
    }


def healthz(
    snap: TelemetrySnapshot, now: float, interval_s: float | None
) -> tuple[bool, dict[str, Any]]:
    """``/healthz``: unhealthy (503) when halted or no cycle finished for two intervals.

    Before the first cycle the clock runs from the process start, so a fresh daemon is healthy
    for two intervals. ``interval_s`` None (not a daemon) skips the cycle check.
    """
    reasons: list[str] = []
    if snap.halted:
        reasons.append(f"halted: {snap.halt_reason or 'unknown reason'}")
    last = (
        snap.last_cycle_finished_at if snap.last_cycle_finished_at is not None else snap.started_at
    )
    since = now - last
    if interval_s is not None and not snap.halted and since > 2 * interval_s:
        reasons.append(f"no cycle finished for {since:.0f}s (two intervals: {2 * interval_s:g}s)")
    body = {
        "status": "ok" if not reasons else "unhealthy",
        "reasons": reasons,
        "halted": snap.halted,
        "halt_reason": snap.halt_reason,
        "kill_switch": snap.kill_switch,
        "consecutive_failures": snap.consecutive_failures,
        "cycle_running": snap.cycle_running,
        "last_cycle_outcome": snap.last_cycle_outcome,
        "last_cycle_finished_at": iso_utc(snap.last_cycle_finished_at),
        "heartbeat_age_seconds": round(now - snap.heartbeat_at, 3) if snap.heartbeat_at else None,
    }
    return not reasons, body
