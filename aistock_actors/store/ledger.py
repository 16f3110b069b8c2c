"""The paper account on disk: ledger, cost calibrator, live returns, drawdown-halt marker.

Layout under ``state/paper/``::

    ledger.json          LedgerState: cash, positions, open orders, this bar's applied ids, the
                         newest fills and the newest equity points (windows, #18)
    fills/YYYY-MM.jsonl  the older fills, append-only (``store/fill_archive.py``, #18)
    equity/YYYY-MM.jsonl the older equity points, append-only (``store/equity_archive.py``, #18)
    costs.json           CostBook: per-symbol and per-liquidity-bucket cost surprise (T4)
    performance.json     {"model_id", "returns": [...], "earlier": {...}}: the rollback rule's input
    drawdown_halt.json   present while a drawdown halt is not yet acknowledged by the operator
    owner.json           which actor instance may write here (a generation fence)
    journal.jsonl        append-only, fsynced fill journal, compacted (``store/journal.py``, #17)

``ledger.json`` is the only truth; ``costs.json`` and ``performance.json`` are derived from it
after it is written and caught up on the next start if a crash came in between. Every file is
written atomically with a ``.bak`` and read through ``store.state_file.load_state``.

Money is never reset silently (#17): every ledger write is journaled first; the writer opens the
ledger with :meth:`PaperStore.open_ledger`, which moves a corrupt file aside (never overwrites
it), rebuilds a ledger whose two copies are unusable from the journal (error alert), and raises
:class:`LedgerLostError` rather than start over at ``initial_cash`` while the journal or the audit
log shows trading.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.core.trading.costs import CostCalibratorState, calibrated_bps, liquidity_bucket
from aistock_actors.core.trading.curve import split_curve
from aistock_actors.core.trading.history import fill_count, split_history
from aistock_actors.core.trading.ledger import (
    Fill,
    LedgerState,
    new_ledger,
)
from aistock_actors.core.trading.orders import ReturnsRecord
from aistock_actors.errors import StateError
from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock, iso_utc
from aistock_actors.store.alerts import AlertSink, Severity
from aistock_actors.store.atomic import atomic_write_json, backup_path, fsync_dir
from aistock_actors.store.audit import read_audit, rotated_files
from aistock_actors.store.equity_archive import EQUITY_DIR, EquityArchive
from aistock_actors.store.fill_archive import FILLS_DIR, FillArchive, plain_fill
from aistock_actors.store.journal import JOURNAL_NAME, FillJournal
from aistock_actors.store.state_file import load_state, try_decode

PAPER_DIR = "paper"
TRADING_ACTIONS = frozenset({"paper_orders_executed", "positions_flattened"})
"""Audit actions that prove the account traded (a fresh account would then be a lie)."""


class LedgerLostError(StateError):
    """Both ledger copies are unusable and the journal cannot rebuild them: halt, never reset."""


class CostBook(msgspec.Struct, frozen=True, kw_only=True):
    """``costs.json``: the calibrator and how far into the ledger's fill log it has read."""

    calibrator: CostCalibratorState = msgspec.field(default_factory=CostCalibratorState)
    fills_recorded: int = 0
    """Fills of the account's life already folded in (archived ones included, #18), so a fill is
    never counted twice."""
    price_improvements: int = 0
    """Fills whose realised cost was negative (recorded unclipped, T4)."""


class PaperPerformance(msgspec.Struct, frozen=True, kw_only=True):
    """``state/paper/performance.json``: the active model's per-bar paper returns since it
    started trading (written by the PaperTrader, read by the registry and rollback checks).

    Bounded (#18): ``returns`` are the ones within the ledger's equity window; the model's
    older returns are folded in ``earlier`` (their count, growth and validity: all the rollback
    rule reads). The whole record is ``earlier`` followed by ``returns``."""

    model_id: str
    returns: list[float]
    """Per-bar simple returns of the paper portfolio, oldest first (the newest ones, #18)."""
    since: str | None = None
    """Timestamp of the equity point the record starts from (informational)."""
    earlier: ReturnsRecord | None = None
    """The model's returns before ``returns`` (None: none; a file written before #18)."""

    def observations(self) -> int:
        """How many per-bar returns the whole record holds."""
        return (self.earlier.count if self.earlier is not None else 0) + len(self.returns)


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

    def __init__(
        self,
        state_dir: Path,
        alerts: AlertSink | None,
        initial_cash: float,
        clock: Clock = SYSTEM_CLOCK,
        *,
        keep_closing_fills: int = 0,
    ) -> None:
        self.root = paper_dir(state_dir)
        self.state_dir = Path(state_dir)
        self.alerts = alerts
        self.initial_cash = initial_cash
        self.clock = clock
        self.keep_closing_fills = keep_closing_fills
        """Archived closing fills whose net P&L the ledger keeps (``risk.performance_window``: the
        win rate reads them; ``HistoryBase.closing_pnl``)."""
        self.journal = FillJournal(self.root / JOURNAL_NAME)
        self.archive = FillArchive(self.root / FILLS_DIR)
        self.equity = EquityArchive(self.root / EQUITY_DIR)

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
        """The persisted ledger, read-only (from ``.bak`` if damaged; else rebuilt in memory from
        the journal; a new account on the first run). Writes nothing: readers use this."""
        return load_state(self.ledger_path, LedgerState, self._rebuilt_or_new, self.alerts,
                          actor="paper_trader")

    def _rebuilt_or_new(self) -> LedgerState:
        try:
            rebuilt = self.journal.rebuild()
        except StateError:
            rebuilt = None
        return rebuilt if rebuilt is not None else new_ledger(self.initial_cash)

    def save_ledger(self, state: LedgerState) -> LedgerState:
        """Archive the fills and equity points beyond their windows, journal the write (fsynced),
        replace ``ledger.json`` atomically, compact the journal; the state written (the
        windows)."""
        state = self._archive_old_points(self._archive_old_fills(state))
        self.journal.append(state)
        atomic_write_json(self.ledger_path, state)
        self.journal.compact(state)
        return state

    def _archive_old_fills(self, state: LedgerState) -> LedgerState:
        """Move the fills beyond the window to ``fills/`` before the ledger drops them (#18)."""
        kept, moved = split_history(state, self.keep_closing_fills)
        if moved:
            self._append_archived(self.archive, moved, state.fills_archived, "fill")
        return kept if moved else state

    def _archive_old_points(self, state: LedgerState) -> LedgerState:
        """Move the equity points beyond the window to ``equity/`` before the ledger drops them."""
        kept, moved = split_curve(state)
        if moved:
            self._append_archived(self.equity, moved, state.curve_archived, "equity")
        return kept if moved else state

    def _append_archived(
        self, archive: FillArchive | EquityArchive, moved: Any, archived: int, kind: str
    ) -> None:
        """Append ``moved`` after the ``archived`` items the ledger says are there, raising
        ``paper_<kind>_archive_gap`` first when the archive ends earlier (files deleted)."""
        mark = archive.high_water()
        if mark < archived:
            item = "fill" if kind == "fill" else "point"
            self._alert("error", f"paper_{kind}_archive_gap",
                        f"{archive.root} ends at {item} {mark} but the ledger archived "
                        f"{archived}: {item}s {mark}..{archived - 1} are "
                        f"missing from the archive (deleted?); archiving on after the gap",
                        {"folder": str(archive.root), "missing_from": mark,
                         "missing_to": archived - 1})
        archive.append(moved, archived)

    def fills_since(self, first: int, state: LedgerState | None = None) -> list[Fill]:
        """Fills numbered ``first`` and later of the ledger ``state`` (else the one on disk),
        oldest first, each once: the archive is read only for fills older than the window."""
        ledger = state if state is not None else self.load_ledger()
        if first >= ledger.fills_archived:
            return list(ledger.fills[first - ledger.fills_archived :])
        older = self.archive.read()
        return [*(plain_fill(r) for r in older if first <= r.seq < ledger.fills_archived),
                *ledger.fills]

    def open_ledger(self) -> LedgerState:
        """The writer's load: recover, quarantine, rebuild or refuse -- never reset silently.

        ``ledger.json``, else its ``.bak`` (error alert), else the journal's rebuild (error alert,
        written back); a corrupt copy is moved aside as ``<name>.corrupt-<UTC stamp>``. With no
        usable copy and no journal, a fresh account is opened only if nothing (no damaged copy,
        no trading in the audit log) says there was one; otherwise :class:`LedgerLostError`.
        Afterwards the journal ends at the returned ledger (a crash window closed, or a journal
        started for a ledger that had none).
        """
        main, main_problem = try_decode(self.ledger_path, LedgerState)
        backup = backup_path(self.ledger_path)
        bak, bak_problem = (None, None) if main is not None else try_decode(backup, LedgerState)
        if main is None and main_problem is not None:
            self._quarantine(self.ledger_path, main_problem)
        if main is None and bak is None and bak_problem is not None:
            self._quarantine(backup, bak_problem)
        state = main if main is not None else bak
        if bak is not None:
            self._alert("error", "state_file_recovered_from_backup",
                        f"{self.ledger_path.name} {main_problem or 'missing'}; loaded the previous "
                        f"version from {backup.name}", {"file": str(self.ledger_path)})
        if state is None:
            state = self._rebuild_or_refuse(main_problem, bak_problem)
        self._sync_journal(state)
        return self._migrate(state)

    def _migrate(self, state: LedgerState) -> LedgerState:
        """A ledger written before the windows (#18: every fill and equity point inline) moves
        its old fills and points to the archives now, in one batch, and is written back."""
        _, moved = split_history(state, self.keep_closing_fills)
        _, points = split_curve(state)
        if not moved and not points:
            return state
        saved = self.save_ledger(state)
        log_detail = (f"{self.ledger_path.name} held {fill_count(state)} fills and "
                      f"{state.curve_archived + len(state.equity_curve)} equity points inline; "
                      f"moved {len(moved)} to {self.archive.root.name}/ and {len(points)} to "
                      f"{self.equity.root.name}/")
        self._alert("info", "paper_ledger_migrated", log_detail,
                    {"fills_archived": saved.fills_archived, "kept": len(saved.fills),
                     "curve_archived": saved.curve_archived,
                     "points_kept": len(saved.equity_curve)})
        return saved

    def _rebuild_or_refuse(self, main_problem: str | None, bak_problem: str | None) -> LedgerState:
        what = (f"{self.ledger_path.name} {main_problem or 'missing'} and .bak "
                f"{bak_problem or 'missing'}")
        try:
            rebuilt = self.journal.rebuild()
        except StateError as exc:
            raise LedgerLostError(f"{what}; the journal cannot rebuild it: {exc}") from exc
        if rebuilt is not None:
            self._alert("error", "paper_ledger_rebuilt_from_journal",
                        f"{what}; rebuilt from {self.journal.path.name} "
                        f"({fill_count(rebuilt)} fills, {len(rebuilt.positions)} positions)",
                        {"file": str(self.ledger_path), "fills": fill_count(rebuilt)})
            atomic_write_json(self.ledger_path, rebuilt)
            return rebuilt
        traded = main_problem is not None or bak_problem is not None or self._audit_shows_trading()
        if traded:
            raise LedgerLostError(
                f"{what}, {self.journal.path.name} is empty, and the account traded before; "
                f"refusing to start over at initial_cash {self.initial_cash:,.2f}"
            )
        return new_ledger(self.initial_cash)

    def _sync_journal(self, state: LedgerState) -> None:
        try:
            appended = self.journal.sync(state)
        except StateError as exc:  # a damaged journal: set aside, start a new one from the ledger
            self._quarantine(self.journal.path, str(exc))
            self.journal = FillJournal(self.journal.path)
            self.journal.append(state)
            return
        if appended and state.fills:
            log_detail = f"journal brought level with {self.ledger_path.name}"
            self._alert("warning", "paper_journal_resynced", log_detail,
                        {"fills": fill_count(state)})

    def _audit_shows_trading(self) -> bool:
        log_path = self.state_dir / "audit" / "log.jsonl"
        try:
            for part in [*rotated_files(log_path), log_path]:
                records, _ = read_audit(part)
                if any(r.action in TRADING_ACTIONS for r in records):
                    return True
        except (OSError, StateError):
            return True  # cannot tell: assume the worst
        return False

    def _quarantine(self, path: Path, problem: str) -> None:
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        os.replace(path, target)
        fsync_dir(path.parent)
        self._alert("error", "state_file_quarantined",
                    f"{path.name} {problem}; moved aside to {target.name}",
                    {"file": str(path), "moved_to": str(target)})

    def _alert(self, severity: Severity, code: str, message: str, details: dict[str, Any]) -> None:
        if self.alerts is not None:
            self.alerts.raise_alert(severity, code, message, actor="paper_trader", details=details)

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
