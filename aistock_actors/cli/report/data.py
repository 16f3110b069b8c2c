"""What the report shows, read from the state directory (read-only: creates and alerts nothing).

Each section's data is collected on its own: a file that cannot be read gives that section a
``problem`` line instead of failing the whole report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import numpy as np

from aistock_actors.config import LoadedConfig
from aistock_actors.core.promotion.manifest import ManifestEntry
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.core.risk.governor import RiskChange
from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.core.trading.costs import CostStats
from aistock_actors.core.trading.orders import Fill
from aistock_actors.errors import AutopilotError

if TYPE_CHECKING:
    from aistock_actors.store.promotion import PromotionStore

T = TypeVar("T")

CEILINGS: dict[str, float | None] = {
    "max_position_fraction": HARD_CEILING_POSITION_FRACTION,
    "max_notional_per_symbol": HARD_CEILING_NOTIONAL_CAP,
    "max_gross_exposure": None,
}
"""Each risk limit and its hard ceiling (gross exposure has none in the manual)."""


@dataclass
class Section:
    """One section's data, or why there is none."""

    problem: str | None = None
    """Set when the section's files could not be read."""


@dataclass
class EquityData(Section):
    """The paper account's equity curve (bar timestamps)."""

    times: list[str] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    initial_cash: float = 0.0
    drawdown_halt: float = 0.0
    """``risk.max_portfolio_drawdown_halt``: the drawdown that trips the kill switch."""


@dataclass
class ModelData(Section):
    """The active model and every verdict's out-of-sample backtest."""

    active: dict[str, Any] | None = None
    active_curve: list[tuple[str, float]] | None = None
    """The active model's out-of-sample backtest equity, ``(ISO-8601 time, value)`` pairs, from
    its curve file ``state/promotion/curves/<model id>.json``; ``None`` when there is none (a
    model promoted before curves were stored) or it cannot be used (:attr:`curve_problem`)."""
    curve_problem: str | None = None
    """Why the active model's curve file, which exists, is not drawn (unreadable, malformed)."""
    active_window: tuple[str, str] | None = None
    """First and last bar of the active model's out-of-sample window (``oos_start/oos_end``)."""
    active_bars: int | None = None
    """Bars in that window (the curve is downsampled from them)."""
    manifest: list[ManifestEntry] = field(default_factory=list)
    min_sharpe: float = 0.0
    max_drawdown: float = 0.0


@dataclass
class RiskData(Section):
    """The risk limits in force, their change history and the hard ceilings."""

    limits: RiskLimits | None = None
    effective: RiskLimits | None = None
    config_limits: RiskLimits | None = None
    history: list[RiskChange] = field(default_factory=list)
    updated_at: str = ""
    regime: str = ""
    min_floor: float = 0.0


@dataclass
class RegimeData(Section):
    """The market regime of every stored bar (``core.regimes.market_regimes``)."""

    times: Any = None
    """numpy datetime64 array (UTC, naive) of the union of the symbols' bar times."""
    index: Any = None
    """The equal-weight index the regimes are labelled from (starts at 1)."""
    codes: Any = None
    symbols: int = 0


@dataclass
class CostData(Section):
    """Every fill's predicted and realised cost, and the calibrator's per-key statistics."""

    fills: list[Fill] = field(default_factory=list)
    stats: dict[str, CostStats] = field(default_factory=dict)
    price_improvements: int = 0


@dataclass
class ReplayData(Section):
    """A replay's cursor and summary, and the equal-weight buy-and-hold it is measured against."""

    state: Any = None
    """The replay's ``ReplayState`` (``state/replay.json``); None outside a replay."""
    times: list[str] = field(default_factory=list)
    """Market times of the replayed bars."""
    benchmark: list[float] = field(default_factory=list)
    """Equal-weight buy-and-hold equity at each of :attr:`times`."""


@dataclass
class ReportData:
    """Everything the report draws."""

    generated_at: datetime
    config_path: str
    state_dir: str
    status: dict[str, Any] | None
    status_problem: str | None
    equity: EquityData
    model: ModelData
    risk: RiskData
    regimes: RegimeData
    costs: CostData
    replay: ReplayData = field(default_factory=ReplayData)
    """In a replay, every time the report shows is a market date (cycle ids carry them)."""


def _guarded(make: Callable[[], T], empty: Callable[[str], T]) -> T:
    """``make()``, or ``empty(reason)`` when the section's files cannot be read."""
    try:
        return make()
    except (AutopilotError, OSError, ValueError, msgspec.MsgspecError) as exc:
        return empty(f"could not read it: {exc}")


def _equity(loaded: LoadedConfig) -> EquityData:
    from aistock_actors.store.ledger import PaperStore

    store = PaperStore(loaded.state_dir, None, loaded.config.paper.initial_cash)
    halt = loaded.config.risk.max_portfolio_drawdown_halt
    if not store.ledger_path.exists():
        return EquityData(drawdown_halt=halt, initial_cash=loaded.config.paper.initial_cash)
    ledger = store.load_ledger()
    whole = store.equity.curve_since(0, ledger)  # archived points too (#18)
    points = [(t, v) for t, v in whole if math.isfinite(v)]
    return EquityData(
        times=[t for t, _ in points],
        equity=[v for _, v in points],
        initial_cash=ledger.initial_cash,
        drawdown_halt=halt,
    )


def _model(loaded: LoadedConfig) -> ModelData:
    from aistock_actors.services import promotion_decisions as promotion_ops
    from aistock_actors.store.promotion import PromotionStore, last_approved_entry

    promo = loaded.config.promotion
    active = promotion_ops.active_model_summary(loaded)
    store = PromotionStore(loaded.state_dir, None)
    manifest = store.load_history()  # the archived verdicts too (store/manifest_archive.py)
    entry = last_approved_entry(manifest, active["id"]) if active is not None else None
    bt = entry.metrics() if entry is not None else {}
    start, end, bars = bt.get("oos_start"), bt.get("oos_end"), bt.get("bars")
    curve, problem = _active_curve(store, active["id"]) if active is not None else (None, None)
    return ModelData(
        active=active,
        active_curve=curve,
        curve_problem=problem,
        active_window=(start, end) if isinstance(start, str) and isinstance(end, str) else None,
        active_bars=bars if isinstance(bars, int) and not isinstance(bars, bool) else None,
        manifest=manifest,
        min_sharpe=promo.min_sharpe,
        max_drawdown=promo.max_drawdown,
    )


def _active_curve(
    store: PromotionStore, model_id: str
) -> tuple[list[tuple[str, float]] | None, str | None]:
    """The active model's stored curve, or ``None`` and, if a file exists, why it is unusable."""
    stored = store.load_curve(model_id)  # the .bak if the file is corrupt
    path = store.curve_path(model_id)
    if stored is None:
        if store.curve_stored(model_id):
            return None, f"{path} and its .bak are unreadable (corrupt)"
        return None, None
    if stored.model_id != model_id:
        return None, f"{path} holds the curve of {stored.model_id!r}, not of {model_id!r}"
    curve = stored_curve(stored.points)
    if curve is None:
        return None, f"{path} has fewer than two finite points"
    return curve, None


def stored_curve(value: Any) -> list[tuple[str, float]] | None:
    """A curve file's ``[[time, value], ...]`` as pairs with finite values, or ``None`` if it is
    missing, malformed, or has fewer than two points (nothing to draw)."""
    if not isinstance(value, list):
        return None
    points = []
    for point in value:
        if not (isinstance(point, (list, tuple)) and len(point) == 2):
            return None
        time, equity = point
        if (not isinstance(time, str) or isinstance(equity, bool)
                or not isinstance(equity, (int, float)) or not math.isfinite(equity)):
            return None
        points.append((time, float(equity)))
    return points if len(points) >= 2 else None


def _risk(loaded: LoadedConfig) -> RiskData:
    from aistock_actors.store.risk import load_risk_state

    cfg = loaded.config.risk
    config_limits = RiskLimits(
        max_position_fraction=cfg.max_position_fraction,
        max_notional_per_symbol=cfg.max_notional_per_symbol,
        max_gross_exposure=cfg.max_gross_exposure,
    )
    state = load_risk_state(loaded.state_dir, None)
    floor = min(loaded.config.headless.min_risk_floor, HARD_CEILING_POSITION_FRACTION)
    if state is None:
        return RiskData(config_limits=config_limits, min_floor=floor)
    return RiskData(
        limits=state.limits,
        effective=state.effective,
        config_limits=config_limits,
        history=list(state.history),
        updated_at=state.updated_at,
        regime=state.regime,
        min_floor=floor,
    )


def _regimes(loaded: LoadedConfig) -> RegimeData:
    import pandas as pd

    from aistock_actors.core.market.regimes import equal_weight_index, market_regimes
    from aistock_actors.store.bars import BarStore

    store = BarStore(loaded.state_dir / "bars")
    closes = {s: store.load(s)["close"] for s in store.symbols() if store.count(s)}
    if not closes:
        return RegimeData()
    panel = pd.DataFrame(closes).sort_index()
    index = panel.index
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        index = index.tz_convert(None)
    values = panel.to_numpy(dtype=float)
    return RegimeData(
        times=index.to_numpy(),
        index=equal_weight_index(values),
        codes=market_regimes(values),
        symbols=len(closes),
    )


def _costs(loaded: LoadedConfig) -> CostData:
    from aistock_actors.store.ledger import PaperStore

    store = PaperStore(loaded.state_dir, None, loaded.config.paper.initial_cash)
    if not store.ledger_path.exists():
        return CostData()
    fills = [
        f for f in store.fills_since(0)  # the archived fills too (#18)
        if math.isfinite(f.predicted_cost_bps) and math.isfinite(f.realised_cost_bps)
    ]
    book = store.load_costs()
    return CostData(
        fills=fills, stats=dict(book.calibrator.stats), price_improvements=book.price_improvements
    )


def _replay(loaded: LoadedConfig) -> ReplayData:
    from aistock_actors.core.data.bars import format_timestamp
    from aistock_actors.core.replay.account import buy_and_hold_curve
    from aistock_actors.core.replay.plan import parse_date
    from aistock_actors.store.bars import BarStore, closes_at
    from aistock_actors.store.replay import load_replay

    state = load_replay(loaded.state_dir)
    if state is None or state.done is None:
        return ReplayData(state=state)
    store = BarStore(loaded.state_dir / "bars")
    stored = [store.arrays(symbol)[0] for symbol in store.symbols()]
    times = np.unique(np.concatenate(stored)) if stored else np.empty(0, dtype=np.int64)
    times = times[(times >= parse_date(state.first_step)) & (times <= parse_date(state.done))]
    costs = loaded.config.paper.costs
    curve = buy_and_hold_curve(closes_at(store, times), loaded.config.paper.initial_cash,
                               costs.commission_rate + costs.half_spread_bps / 10_000.0)
    return ReplayData(
        state=state,
        times=[format_timestamp(int(t)) for t in times],
        benchmark=[float(v) for v in curve] if curve is not None else [],
    )


def _on_market_dates(model: ModelData, risk: RiskData) -> None:
    """A replay's verdicts and risk changes at the market date their cycle ran (its id carries
    it), not at the wall time the replay happened to reach it."""
    from aistock_actors.core.replay.summary import cycle_date

    model.manifest = [
        msgspec.structs.replace(entry, time=cycle_date(
            entry.cycle_id if isinstance(entry.cycle_id, str) else "") or entry.time)
        for entry in model.manifest
    ]
    risk.history = [
        msgspec.structs.replace(change, at=cycle_date(change.cycle_id) or change.at)
        for change in risk.history
    ]


def _status(loaded: LoadedConfig) -> tuple[dict[str, Any] | None, str | None]:
    from aistock_actors.services import operator_actions as operator

    try:
        return msgspec.to_builtins(operator.status(loaded)), None
    except (AutopilotError, OSError, ValueError, msgspec.MsgspecError) as exc:
        return None, f"could not read the status: {exc}"


def collect(loaded: LoadedConfig, now: datetime) -> ReportData:
    """Read every section's data from ``loaded``'s state and models folders."""
    status, status_problem = _status(loaded)
    data = ReportData(
        generated_at=now,
        config_path=str(loaded.path),
        state_dir=str(loaded.state_dir),
        status=status,
        status_problem=status_problem,
        equity=_guarded(lambda: _equity(loaded), lambda p: EquityData(problem=p)),
        model=_guarded(lambda: _model(loaded), lambda p: ModelData(problem=p)),
        risk=_guarded(lambda: _risk(loaded), lambda p: RiskData(problem=p)),
        regimes=_guarded(lambda: _regimes(loaded), lambda p: RegimeData(problem=p)),
        costs=_guarded(lambda: _costs(loaded), lambda p: CostData(problem=p)),
        replay=_guarded(lambda: _replay(loaded), lambda p: ReplayData(problem=p)),
    )
    if data.replay.state is not None:
        _on_market_dates(data.model, data.risk)
    return data


def parse_times(values: Sequence[str]) -> Any | None:
    """ISO-8601 strings as naive-UTC numpy datetime64, or None if any does not parse."""
    import pandas as pd

    try:
        parsed = pd.to_datetime(list(values), utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return None
    return parsed.tz_convert(None).to_numpy()
