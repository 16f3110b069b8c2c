"""The paper account on disk: ledger, cost calibrator, live returns, drawdown-halt marker.

Layout under ``state/paper/``::

    ledger.json          LedgerState: cash, positions, open orders, applied ids, fills, equity
    costs.json           CostBook: per-symbol and per-liquidity-bucket cost surprise (T4)
    performance.json     {"model_id": ..., "returns": [...]}: the rollback rule's input
    drawdown_halt.json   present while a drawdown halt is not yet acknowledged by the operator
    owner.json           which actor instance may write here (a generation fence)

``ledger.json`` is the only truth; ``costs.json`` and ``performance.json`` are derived from it
after it is written and caught up on the next start if a crash came in between. Every file is
written atomically with a ``.bak`` and read through ``store.state_file.load_state``.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from aistock_actors.core.trading.costs import CostCalibratorState, calibrated_bps, liquidity_bucket
from aistock_actors.core.trading.ledger import (
    LedgerState,
    current_drawdown,
    ledger_equity,
    new_ledger,
)
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock, iso_utc
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json, backup_path
from aistock_actors.store.state_file import load_state

PAPER_DIR = "paper"


class CostBook(msgspec.Struct, frozen=True, kw_only=True):
    """``costs.json``: the calibrator and how far into the ledger's fill log it has read."""

    calibrator: CostCalibratorState = msgspec.field(default_factory=CostCalibratorState)
    fills_recorded: int = 0
    """Fills of ``ledger.json`` already folded in (so a fill is never counted twice)."""
    price_improvements: int = 0
    """Fills whose realised cost was negative (recorded unclipped, T4)."""


class PaperPerformance(msgspec.Struct, frozen=True, kw_only=True):
    """``state/paper/performance.json``: the active model's per-bar paper returns since it
    started trading (written by the PaperTrader, read by the registry and rollback checks)."""

    model_id: str
    returns: list[float]
    """Per-bar simple returns of the paper portfolio, oldest first."""
    since: str | None = None
    """Timestamp of the equity point the record starts from (informational)."""


class DrawdownHalt(msgspec.Struct, frozen=True, kw_only=True):
    """``drawdown_halt.json``: the drawdown kill switch fired and the operator has not yet said
    to carry on (``--unkill`` acknowledges it)."""

    drawdown: float
    threshold: float
    equity: float
    peak: float
    tripped_at: str
    acknowledged: bool = False
    acknowledged_at: str = ""


def _unreadable_halt() -> DrawdownHalt:
    nan = float("nan")
    return DrawdownHalt(drawdown=nan, threshold=nan, equity=nan, peak=nan, tripped_at="unknown")


def paper_dir(state_dir: Path) -> Path:
    """``state/paper``."""
    return Path(state_dir) / PAPER_DIR


def utc_now(clock: Clock = SYSTEM_CLOCK) -> str:
    """The clock's wall time, ISO-8601 UTC with a ``Z``."""
    return iso_utc(clock.now())


class PaperStore:
    """Reads and writes the files of ``state/paper`` (one writer: the PaperTrader)."""

    def __init__(self, state_dir: Path, alerts: AlertSink | None, initial_cash: float) -> None:
        self.root = paper_dir(state_dir)
        self.alerts = alerts
        self.initial_cash = initial_cash

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.json"

    @property
    def costs_path(self) -> Path:
        return self.root / "costs.json"

    @property
    def performance_path(self) -> Path:
        return self.root / "performance.json"

    @property
    def drawdown_halt_path(self) -> Path:
        return self.root / "drawdown_halt.json"

    def load_ledger(self) -> LedgerState:
        """The persisted ledger (from ``.bak`` if damaged; a new account on the first run)."""
        return load_state(
            self.ledger_path,
            LedgerState,
            lambda: new_ledger(self.initial_cash),
            self.alerts,
            actor="paper_trader",
        )

    def save_ledger(self, state: LedgerState) -> None:
        atomic_write_json(self.ledger_path, state)

    def load_costs(self) -> CostBook:
        return load_state(self.costs_path, CostBook, CostBook, self.alerts, actor="paper_trader")

    def save_costs(self, book: CostBook) -> None:
        atomic_write_json(self.costs_path, book)

    def save_performance(self, perf: PaperPerformance) -> None:
        atomic_write_json(self.performance_path, perf)

    def read_drawdown_halt(self) -> DrawdownHalt | None:
        """The unacknowledged-or-acknowledged drawdown halt, None if there is none.

        A marker that exists but cannot be read (nor its ``.bak``) still means halted: fail safe.
        """
        path = self.drawdown_halt_path
        if not path.exists() and not backup_path(path).exists():
            return None
        return load_state(path, DrawdownHalt, _unreadable_halt, self.alerts, actor="paper_trader")

    def write_drawdown_halt(self, halt: DrawdownHalt) -> None:
        atomic_write_json(self.drawdown_halt_path, halt)

    def clear_drawdown_halt(self) -> None:
        for path in (self.drawdown_halt_path, backup_path(self.drawdown_halt_path)):
            path.unlink(missing_ok=True)


def acknowledge_drawdown_halt(state_dir: Path) -> bool:
    """Operator: mark an active drawdown halt acknowledged (``--unkill``); True if there was one.

    The PaperTrader then measures the drawdown from the current equity on, instead of tripping
    again at once on the same loss.
    """
    store = PaperStore(state_dir, None, 0.0)
    halt = store.read_drawdown_halt()
    if halt is None or halt.acknowledged:
        return False
    store.write_drawdown_halt(
        msgspec.structs.replace(halt, acknowledged=True, acknowledged_at=utc_now())
    )
    return True


def calibrated_costs(
    state_dir: Path, base_bps: float, *, min_count: int = 5, floor_bps: float | None = 0.0
) -> dict[str, float]:
    """The backtester's per-key cost assumption in bps from ``state/paper/costs.json``.

    Keys are symbols and liquidity buckets (``liq0``...); each value is ``base_bps`` plus the
    learned EWMA cost surprise once ``min_count`` fills were seen (see
    :func:`~aistock_actors.core.trading.costs.calibrated_bps`). An empty dict without a calibrator
    file.
    """
    book = PaperStore(state_dir, None, 0.0).load_costs()
    stats = book.calibrator.stats
    return {
        key: calibrated_bps(
            book.calibrator, key, base_bps, min_count=min_count, floor_bps=floor_bps
        )
        for key in sorted(stats)
    }


def calibrator_keys(symbol: str, bar_volume_notional: float) -> tuple[str, str]:
    """The two calibrator keys a fill feeds: its symbol and its liquidity bucket."""
    return symbol, liquidity_bucket(bar_volume_notional)


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    """One position as ``--status`` shows it."""

    symbol: str
    quantity: float
    entry_price: float
    last_price: float | None
    value: float
    weight: float


class PaperStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The paper account as ``--status`` shows it."""

    as_of: str
    model_id: str
    equity: float
    cash: float
    initial_cash: float
    drawdown: float
    realised_pnl: float
    positions: list[PositionView]
    open_orders: int
    fills: int
    drawdown_halt: DrawdownHalt | None


def paper_status(state_dir: Path) -> PaperStatus | None:
    """Read-only summary of the ledger (None before the first trade step)."""
    store = PaperStore(state_dir, None, 0.0)
    if not store.ledger_path.exists() and not backup_path(store.ledger_path).exists():
        return None
    state = store.load_ledger()
    equity = ledger_equity(state)
    views = [
        PositionView(
            symbol=p.symbol,
            quantity=p.quantity,
            entry_price=p.entry_price,
            last_price=p.last_price,
            value=p.quantity * (p.last_price or 0.0),
            weight=p.quantity * (p.last_price or 0.0) / equity if equity > 0 else 0.0,
        )
        for p in sorted(state.positions.values(), key=lambda p: p.symbol)
    ]
    return PaperStatus(
        as_of=state.as_of,
        model_id=state.model_id,
        equity=equity,
        cash=state.cash,
        initial_cash=state.initial_cash,
        drawdown=current_drawdown(state).value,
        realised_pnl=state.realised_pnl,
        positions=views,
        open_orders=len(state.open_orders),
        fills=len(state.fills),
        drawdown_halt=store.read_drawdown_halt(),
    )
