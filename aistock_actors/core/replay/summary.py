"""A replay's summary, pure: what the autopilot did over the market period (counted from the
audit log's records and the promotion manifest), and the shape of the account figures
(:mod:`aistock_actors.core.replay.account` computes them). Dates are market dates (a replay's
cycle ids and ``as_of`` carry them), never wall times. No numpy here: ``--status`` loads these
Structs from ``state/replay.json`` and must stay light.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from aistock_actors.core.promotion.manifest import ManifestEntry

HALT_ACTIONS = frozenset(
    {"kill_switch_activated", "max_failures_reached", "restart_intensity_exceeded",
     "state_write_failed"}
)
"""Audit actions that record the system halting."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Something the autopilot did at a market date (a promotion, a rollback, a halt)."""

    date: str
    """Market date (``YYYY-MM-DD``, or the full time for intraday bars)."""
    what: str
    """The model id (promotions, rollbacks, retirements) or the halt's reason."""
    detail: str = ""


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """An account's performance over the period."""

    initial: float
    final_equity: float
    total_return: float
    cagr: float
    sharpe: float
    max_drawdown: float
    turnover: float
    """Traded notional over the average equity (buy-and-hold: 1.0, the initial purchase)."""
    costs: float
    """Dollars paid: commissions, spread and market impact."""
    trades: int


class ReplaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """What ``--replay`` prints at the end and ``--status --json`` shows under ``replay``."""

    period_start: str | None
    period_end: str | None
    steps_done: int
    steps_total: int
    cycles: int
    cycles_failed: int
    cycles_degraded: int
    candidates: int
    """Candidates trained (distinct model ids)."""
    promotions: list[Event]
    pending: int
    """Candidates that passed and wait for ``--approve`` (supervised mode)."""
    rejections: dict[str, int]
    """Rejected candidates by their first failing stage."""
    risk_changes: dict[str, int]
    """Risk-limit changes by reason."""
    rollbacks: list[Event]
    retirements: list[Event]
    halts: list[Event]
    account: Account | None
    benchmark: Account | None
    """Equal-weight buy-and-hold of the same symbols over the same bars."""
    wall_seconds: float = 0.0


def market_date(text: str) -> str:
    """``2020-03-02T00:00:00Z`` -> ``2020-03-02`` (midnight); other times stay whole."""
    return text[:10] if text[10:19] in ("", "T00:00:00") else text


def _cycle_moment(cycle_id: str) -> datetime | None:
    try:
        return datetime.strptime(cycle_id[1:16], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def cycle_time_ns(cycle_id: str) -> int | None:
    """The market time stamped in a cycle id (to the second), in ns UTC."""
    moment = _cycle_moment(cycle_id)
    return None if moment is None else int(moment.timestamp()) * 10**9


def cycle_date(cycle_id: str) -> str | None:
    """The market date stamped in a cycle id (``c20200302T000000Z-0042`` -> ``2020-03-02``)."""
    moment = _cycle_moment(cycle_id)
    return None if moment is None else market_date(moment.isoformat().replace("+00:00", "Z"))


def _event_date(record: Any) -> str:
    as_of = getattr(record, "as_of", None)
    return market_date(as_of) if isinstance(as_of, str) else "?"


def lifecycle(records: Iterable[Any], manifest: Sequence[ManifestEntry]) -> dict[str, Any]:
    """Candidates, promotions, pending, rejections by first failing stage, risk changes,
    rollbacks, retirements and halts, from audit records (``action``, ``details``, ``as_of``)
    and the manifest."""
    trained: set[str] = set()
    risk: Counter[str] = Counter()
    rollbacks, retirements, halts = [], [], []
    for record in records:
        action, details = record.action, record.details
        if action == "model_trained":
            trained.add(str(details.get("model_id")))
        elif action == "risk_limits_adjusted":
            risk[str(details.get("reason", "unknown"))] += 1
        elif action == "auto_rollback_on_degradation":
            back_to = details.get("rolled_back_to") or "no model"
            rollbacks.append(Event(date=_event_date(record), what=str(details.get("model_id")),
                                   detail=f"back to {back_to}"))
        elif action == "strategy_removed":
            retirements.append(Event(date=_event_date(record), what=str(details.get("model_id"))))
        elif action in HALT_ACTIONS and not details.get("already_halted"):
            halts.append(Event(date=_event_date(record), what=action,
                               detail=str(details.get("message", ""))[:200]))
    promotions, rejections, pending = [], Counter[str](), 0
    for entry in manifest:
        status = entry.status
        cycle = entry.cycle_id if isinstance(entry.cycle_id, str) else ""
        if entry.action == "promote" and status in ("approved", "rolled_back"):
            promotions.append(Event(date=cycle_date(cycle) or "?", what=entry.model_id,
                                    detail=entry.id))
        elif status == "pending":
            pending += 1
        elif status in ("rejected", "recorded"):
            key = entry.reasons[0] if entry.reasons else str(status)
            rejections[key if status == "rejected" else f"recorded: {key}"] += 1
    return {
        "candidates": len(trained),
        "promotions": promotions,
        "pending": pending,
        "rejections": dict(rejections.most_common()),
        "risk_changes": dict(risk.most_common()),
        "rollbacks": rollbacks,
        "retirements": retirements,
        "halts": halts,
    }
