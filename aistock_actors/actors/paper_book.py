"""The PaperTrader's bookkeeping: persisting, derived files, audit, halt and drawdown handling.

A helper object the PaperTrader holds (:class:`PaperBook`, composition as mopidy's ``Core`` holds
its controllers), so the trading step in :mod:`aistock_actors.actors.paper_trader` stays
readable and the book owns the ledger in memory: the trader reads it, the book writes it.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from aistock_actors.actors.base import ActorContext
from aistock_actors.core.trading.costs import CostModel, record_fill
from aistock_actors.core.trading.curve import model_returns, model_started
from aistock_actors.core.trading.cycle import Drawdown, flatten_bars, new_bars
from aistock_actors.core.trading.execution import execute_orders
from aistock_actors.core.trading.history import fill_count
from aistock_actors.core.trading.ledger import (
    ExecutionReport,
    Fill,
    LedgerState,
    Order,
    flatten_orders,
    new_ledger,
    reconcile,
)
from aistock_actors.messages.control import KillSwitchTripped
from aistock_actors.store.bars import BarStore
from aistock_actors.store.fence import Fence
from aistock_actors.store.ledger import (
    CostBook,
    DrawdownHalt,
    LedgerLostError,
    PaperPerformance,
    PaperStore,
    calibrator_keys,
    utc_now,
)

log = logging.getLogger(__name__)
_AUDITED_FILLS = 50
"""At most this many fills are itemised in one audit record (the ledger keeps them all)."""


def _fill_details(fill: Fill) -> dict[str, Any]:
    return {
        "order_id": fill.order_id,
        "symbol": fill.symbol,
        "quantity": fill.quantity,
        "price": fill.price,
        "realised_cost_bps": fill.realised_cost_bps,
    }


class PaperBook:
    """Everything the PaperTrader does besides deciding trades; owns the ledger in memory."""

    def __init__(
        self,
        ctx: ActorContext,
        store: PaperStore,
        bars: BarStore,
        fence: Fence,
        cost_model: CostModel,
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.bars = bars
        self.fence = fence
        self.cost_model = cost_model
        self.ledger: LedgerState = new_ledger(store.initial_cash)  # in memory until open()
        self.costs = CostBook()
        self.problems: list[str] = []
        """Why the persisted ledger does not reconcile (empty when it does): then nothing trades."""

    def open(self) -> None:
        """Load the ledger and the cost book, check them, and re-apply a halt found at start."""
        try:
            self.ledger = self.store.open_ledger()
        except LedgerLostError as exc:  # never start over at initial_cash (#17): halt
            self.ledger_lost(str(exc))
            return
        self.costs = self.store.load_costs()
        self.problems = reconcile(self.ledger)
        if self.problems:
            self.ctx.alerts.raise_alert(
                "critical",
                "paper_ledger_inconsistent",
                f"{self.store.ledger_path} does not reconcile with its fill log: "
                f"{'; '.join(self.problems[:5])}; paper trading refused until repaired",
                actor=self.ctx.name,
            )
            return
        self.catch_up_costs()
        self.enforce_drawdown_halt()
        if self.ctx.halt_flag.is_set():
            self.apply_halt_action("halted_at_start")

    # --- persistence -----------------------------------------------------------------------

    def persist(self, state: LedgerState) -> None:
        """Write the ledger (the truth) if this instance still owns it, then the derived files."""
        self.fence.check()
        state = self.store.save_ledger(state)  # the fills beyond the window go to the archive
        self.ledger = state
        self.catch_up_costs()
        if state.model_id and state.equity_curve:  # bounded: older returns folded (#18)
            self.store.save_performance(
                PaperPerformance(model_id=state.model_id, returns=model_returns(state),
                                 since=model_started(state), earlier=state.model_archived)
            )

    def catch_up_costs(self) -> None:
        """Fold every fill not yet in ``costs.json`` into the calibrator, unclipped (T4).

        ``fills_recorded`` counts the account's fills, archived ones included (#18); fills older
        than the ledger's window (a ``costs.json`` left behind) are read from the archive."""
        total = fill_count(self.ledger)
        book = self.costs
        if book.fills_recorded > total:  # the ledger came back from its .bak
            log.warning("costs.json is ahead of the ledger's fill log; re-aligned")
            book = msgspec.structs.replace(book, fills_recorded=total)
        if book.fills_recorded == total and book is self.costs:
            return
        calibrator, improvements = book.calibrator, book.price_improvements
        alpha = self.ctx.config.config.paper.cost_ewma_alpha
        for fill in self.store.fills_since(book.fills_recorded, self.ledger):
            for key in calibrator_keys(fill.symbol, fill.bar_volume_notional):
                calibrator, note = record_fill(
                    calibrator, key, fill.predicted_cost_bps, fill.realised_cost_bps, alpha
                )
            if note.price_improvement:
                improvements += 1
                log.info(
                    "price improvement on %s %s: realised %.2f bps vs predicted %.2f bps "
                    "(recorded unclipped)",
                    fill.order_id,
                    fill.symbol,
                    fill.realised_cost_bps,
                    fill.predicted_cost_bps,
                )
        self.costs = CostBook(
            calibrator=calibrator, fills_recorded=total, price_improvements=improvements
        )
        self.fence.check()
        self.store.save_costs(self.costs)

    # --- audit -----------------------------------------------------------------------------

    def audit_step(
        self,
        cycle_id: str,
        state: LedgerState,
        fills: list[Fill],
        orders: list[Order],
        report: ExecutionReport,
    ) -> None:
        """Audit what the step did (after the ledger was written)."""
        if fills or report.cancelled or report.carried:
            self.ctx.audit.append(
                "paper_orders_executed",
                self.ctx.name,
                {
                    "cycle_id": cycle_id,
                    "bar": fills[0].timestamp if fills else state.as_of,
                    "fills": [_fill_details(f) for f in fills[:_AUDITED_FILLS]],
                    "fill_count": len(fills),
                    "carried": report.carried,
                    "cancelled": report.cancelled,
                    "halted": report.halted,
                },
            )
        if orders:
            self.ctx.audit.append(
                "paper_orders_planned",
                self.ctx.name,
                {
                    "cycle_id": cycle_id,
                    "decision_bar": state.as_of,
                    "model_id": state.model_id,
                    "orders": [
                        {"order_id": o.order_id, "symbol": o.symbol, "quantity": o.quantity}
                        for o in orders[:_AUDITED_FILLS]
                    ],
                    "order_count": len(orders),
                },
            )

    # --- drawdown halt ---------------------------------------------------------------------

    def write_drawdown_marker(self, drawdown: Drawdown) -> None:
        """Leave the unacknowledged marker (before the ledger write: see the module docstring)."""
        cfg = self.ctx.config.config
        self.fence.check()
        self.store.write_drawdown_halt(
            DrawdownHalt(
                drawdown=drawdown.value,
                threshold=cfg.risk.max_portfolio_drawdown_halt,
                equity=drawdown.equity,
                peak=drawdown.peak,
                tripped_at=utc_now(),
            )
        )

    def report_drawdown_halt(self, drawdown: Drawdown) -> None:
        """Audit ``max_drawdown_halt`` and tell the supervisor to latch the kill switch."""
        threshold = self.ctx.config.config.risk.max_portfolio_drawdown_halt
        self.ctx.audit.append(
            "max_drawdown_halt",
            self.ctx.name,
            {
                "drawdown": drawdown.value,
                "threshold": threshold,
                "equity": drawdown.equity,
                "peak": drawdown.peak,
            },
        )
        self._trip(f"paper drawdown {drawdown.value:.2%} > {threshold:.2%}")

    def enforce_drawdown_halt(self) -> None:
        """An unacknowledged marker means halted: (re)set the flag and (re)tell the supervisor.

        Covers a crash between writing the marker and the supervisor latching the halt.
        """
        marker = self.store.read_drawdown_halt()
        if marker is None or marker.acknowledged:
            return
        self.ctx.halt_flag.set()
        self._trip(f"paper drawdown {marker.drawdown:.2%} (tripped {marker.tripped_at})")

    def ledger_lost(self, detail: str) -> None:
        """Both ledger copies gone and nothing to rebuild them from: refuse and halt (#17)."""
        self.ledger = new_ledger(self.store.initial_cash)  # in memory only: never persisted
        self.costs = CostBook()
        self.problems = [f"paper ledger lost: {detail}"]
        self.ctx.alerts.raise_alert(
            "critical",
            "paper_ledger_unrecoverable",
            f"{detail}; paper trading halted until the operator restores the ledger",
            actor=self.ctx.name,
        )
        self.ctx.halt_flag.set()
        self.ctx.report(
            KillSwitchTripped(
                source="paper_ledger",
                detail=detail,
                actor=self.ctx.name,
                generation=self.ctx.generation,
            )
        )

    def _trip(self, detail: str) -> None:
        self.ctx.report(
            KillSwitchTripped(
                source="drawdown",
                detail=detail,
                actor=self.ctx.name,
                generation=self.ctx.generation,
            )
        )

    # --- halt ------------------------------------------------------------------------------

    def apply_halt_action(self, why: str) -> None:
        """``freeze``: cancel the open orders; ``flatten``: close every position."""
        if self.problems:
            log.error("halt action skipped: the ledger does not reconcile (%s)", self.problems[0])
            return
        state = self.ledger
        if self.ctx.config.config.risk.halt_action == "flatten" and state.positions:
            self.flatten(why)
        elif state.open_orders:
            ids = [o.order_id for o in state.open_orders]
            applied = [*state.applied_order_ids, *ids]
            self.persist(msgspec.structs.replace(state, open_orders=[], applied_order_ids=applied))
            self.ctx.audit.append(
                "open_orders_cancelled_on_halt", self.ctx.name, {"reason": why, "orders": ids}
            )

    def flatten(self, why: str) -> None:
        """Close everything at the next price (the one trade allowed after a halt)."""
        state = self.ledger
        arrays = self.bars.readable_arrays()
        bars, stamp = flatten_bars(new_bars(arrays, state.as_of_ns), arrays)
        prices = {s: b.close for s, b in bars.items()}
        key = self.ctx.clock.now().isoformat()
        state, orders = flatten_orders(state, prices, cycle_id=f"flatten@{key}")
        state, fills, report = execute_orders(
            state,
            orders,
            bars,
            self.cost_model,
            timestamp=stamp,
            halted=lambda: False,  # flattening is the one thing allowed after a halt
            max_volume_share=1.0,
            remainder_policy="cancel",
        )
        self.persist(state)
        details = {
            "reason": why,
            "bar": stamp,
            "fills": [_fill_details(f) for f in fills[:_AUDITED_FILLS]],
            "still_open": sorted(state.positions),
        }
        self.ctx.audit.append("positions_flattened", self.ctx.name, details)
        if state.positions:
            self.ctx.alerts.raise_alert(
                "error",
                "flatten_incomplete",
                f"could not close {sorted(state.positions)} (no bar or volume): {report.warnings}",
                actor=self.ctx.name,
            )
