"""The figures of a replay's summary, pure: what the autopilot did over the market period, and
how its paper account did against an equal-weight buy-and-hold of the same universe.

Everything is computed from what the run left: the audit log's records (actions and details),
the promotion manifest, the ledger's equity curve and fill log, and the stored closes. Dates
are market dates (a replay's cycle ids and ``as_of`` carry them), never wall times.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from aistock_actors.core.backtest.metrics import max_drawdown, sharpe, simple_returns

YEAR_NS = 365.25 * 86_400 * 10**9
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


def lifecycle(records: Iterable[Any], manifest: Sequence[dict[str, Any]]) -> dict[str, Any]:
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
        status, cycle = entry.get("status"), str(entry.get("cycle_id", ""))
        if entry.get("action") == "promote" and status in ("approved", "rolled_back"):
            promotions.append(Event(date=cycle_date(cycle) or "?", what=str(entry["model_id"]),
                                    detail=str(entry.get("id", ""))))
        elif status == "pending":
            pending += 1
        elif status in ("rejected", "recorded"):
            reasons = entry.get("reasons") or []
            key = str(reasons[0]) if reasons else str(status)
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


def _years(start_ns: int, end_ns: int) -> float:
    return max(end_ns - start_ns, 0) / YEAR_NS


def _figures(
    times: NDArray[np.int64], equity: NDArray[np.float64], initial: float
) -> tuple[float, float, float, float]:
    """(total return, CAGR by calendar time, Sharpe at the data's own bar frequency, max DD)."""
    final = float(equity[-1])
    total = final / initial - 1.0 if initial > 0 else math.nan
    years = _years(int(times[0]), int(times[-1])) if len(times) > 1 else 0.0
    cagr = (final / initial) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else math.nan
    per_year = max(round((len(times) - 1) / years), 1) if years > 0 else 252
    ratio = sharpe(simple_returns(equity), periods=per_year) if len(equity) > 2 else 0.0
    return total, cagr, float(ratio), float(max_drawdown(equity)) if len(equity) > 1 else 0.0


def paper_account(
    curve: Sequence[tuple[int, float]],
    initial: float,
    fills: Iterable[tuple[float, float, float, float]],
) -> Account | None:
    """The paper account from its equity curve (``(ns, equity)``) and fills
    (``(quantity, price, reference_price, commission)``)."""
    points = [(t, v) for t, v in curve if math.isfinite(v)]
    if not points:
        return None
    times = np.array([t for t, _ in points], dtype=np.int64)
    equity = np.array([v for _, v in points], dtype=np.float64)
    traded = costs = 0.0
    trades = 0
    for quantity, price, reference, commission in fills:
        traded += abs(quantity * price)
        costs += commission + abs(quantity) * abs(price - reference)
        trades += 1
    total, cagr, ratio, drawdown = _figures(times, equity, initial)
    mean = float(equity.mean())
    return Account(
        initial=initial, final_equity=float(equity[-1]), total_return=total, cagr=cagr,
        sharpe=ratio, max_drawdown=drawdown, turnover=traded / mean if mean > 0 else 0.0,
        costs=costs, trades=trades,
    )


def buy_and_hold(
    times: NDArray[np.int64], closes: NDArray[np.float64], initial: float, entry_cost: float
) -> Account | None:
    """Equal-weight buy-and-hold: at the first bar, ``initial`` less ``entry_cost`` (a fraction:
    commission and half spread) split equally over the symbols with a close there, held to the
    end, marked at each symbol's last close. ``closes`` is bars x symbols, NaN where a symbol has
    no bar."""
    equity = buy_and_hold_curve(closes, initial, entry_cost)
    if equity is None or len(times) != len(equity):
        return None
    held = int(np.isfinite(closes[0]).sum())
    total, cagr, ratio, drawdown = _figures(times, equity, initial)
    return Account(
        initial=initial, final_equity=float(equity[-1]), total_return=total, cagr=cagr,
        sharpe=ratio, max_drawdown=drawdown, turnover=1.0, costs=initial * entry_cost,
        trades=held,
    )


def buy_and_hold_curve(
    closes: NDArray[np.float64], initial: float, entry_cost: float
) -> NDArray[np.float64] | None:
    """The equity of :func:`buy_and_hold` at each bar (None: no symbol has a first close)."""
    if closes.size == 0:
        return None
    marks = _forward_filled(closes)
    start = marks[0]
    held = np.isfinite(start) & (start > 0)
    if not held.any():
        return None
    invested = initial * (1.0 - entry_cost)
    shares = np.where(held, invested / held.sum() / np.where(held, start, 1.0), 0.0)
    return np.asarray(np.nansum(np.where(held, marks, 0.0) * shares, axis=1), dtype=np.float64)


def _forward_filled(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Each column's last finite value carried forward (NaN before its first)."""
    filled = np.array(values, dtype=np.float64, copy=True)
    valid = np.isfinite(filled)
    index = np.where(valid, np.arange(len(filled))[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    taken = np.take_along_axis(filled, index, axis=0)
    seen = np.maximum.accumulate(valid, axis=0)
    return np.where(seen, taken, np.nan)
