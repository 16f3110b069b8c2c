"""PaperTrader: trades the active model on paper, one step per cycle (step ``trade``).

Each step, on the ledger it owns (``state/paper/ledger.json``):

1. fills the orders planned last cycle at the NEXT bar's open (the rule and its reasons are in
   :mod:`aistock_actors.core.trading.cycle`), each fill checking the shared halt flag the moment it
   happens; then marks every new bar's close (``last_price``, T3) into the equity curve;
2. checks the drawdown from the running peak against ``risk.max_portfolio_drawdown_halt``: beyond
   it the actor sets the halt flag, leaves ``state/paper/drawdown_halt.json`` and tells the
   supervisor :class:`KillSwitchTripped` (``source="drawdown"``), which latches a persisted halt;
3. unless halted, asks the active model for signals (meta-label filtered at its OWN threshold,
   T6), sizes them like the backtest inside the effective risk limits (``state/risk/limits.json``)
   and plans the orders for the difference; they stay open until the next bar. This also runs in
   a cycle without a new bar (a model activated since), against the same decision bar: the
   deterministic ids and the open orders counted as pending make it add nothing twice;
4. persists the ledger atomically BEFORE replying, then derives ``costs.json`` (the cost
   calibrator, T4) and ``performance.json`` (the rollback rule's input) from it.

**Crash window.** Fills exist only in memory until ``ledger.json`` is replaced; nothing outside the
process sees them before that (the reply, the audit records and the derived files all come after).
A crash before the write therefore means no fill happened: the restarted instance loads the
previous ledger and, because the fills are a pure function of that ledger and the stored bars,
re-runs the same orders (same deterministic ids) against the same next bar. A crash after the write
leaves ``as_of`` at the new bar, so the re-run finds no new bar, and any id already applied is
refused by ``applied_order_ids``. The ledger file stays bounded (#18): it keeps the newest fills
and the ids applied at its ``as_of`` bar; older fills move to ``state/paper/fills/`` first.
``costs.json`` records how many fills it has folded in and catches up at start. The audit lines of
a step can be lost by such a crash; the fill log cannot.

**Halt.** ``risk.halt_action = freeze`` (default): keep the positions, cancel the open orders,
place nothing. ``flatten``: close every position at the next price the trader has (the first
stored bar after ``as_of``, else the newest close), audited ``positions_flattened`` — the only
trading allowed after a halt. Both also run at start if the system is already halted.

**No active model**: the step succeeds; positions are still marked. Positions a retired model
left are closed at the next bar (``paper.on_no_model = flatten``, the default) or kept
(``hold``), audited ``positions_without_model`` once (#17). An active artifact failing its hash
check: nothing new is planned, a critical alert is raised and the step fails.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.actors.paper_book import PaperBook
from aistock_actors.core.model.live_features import LiveFeatures
from aistock_actors.core.model.models import TrainedModel
from aistock_actors.core.risk.policy import RiskLimits, cap_target_weights, clamp_to_ceilings
from aistock_actors.core.strategy.artifact import StrategyModel
from aistock_actors.core.strategy.live_rules import LiveRuleWeights
from aistock_actors.core.trading.costs import CostModel
from aistock_actors.core.trading.cycle import (
    Advance,
    Drawdown,
    NewBars,
    advance,
    current_drawdown,
    new_bars,
    plan_cycle,
    rebase_drawdown,
    signal_weights,
    track_model,
)
from aistock_actors.core.trading.ledger import (
    ExecutionReport,
    LedgerState,
    Order,
    ledger_equity,
)
from aistock_actors.errors import (
    ModelIntegrityError,
    ModelUnavailableError,
    StateError,
    StrategyError,
)
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.control import Halt
from aistock_actors.messages.trading import PaperTraded, PaperTraderInbox, TradePaper
from aistock_actors.services.strategy_targets import strategy_targets
from aistock_actors.store.bars import BarStore
from aistock_actors.store.fence import Fence
from aistock_actors.store.ledger import PaperStore, paper_dir
from aistock_actors.store.model_cache import ActiveModelCache
from aistock_actors.store.models import ModelStore
from aistock_actors.store.risk import trading_limits
from aistock_actors.store.signing import IntegrityKey

log = logging.getLogger(__name__)


class PaperTrader(SupervisedActor):
    """Owns ``state/paper/``; reads the bar store, the model store and the risk limits."""

    child_name = "paper_trader"
    inbox = PaperTraderInbox

    def load_state(self) -> None:
        loaded = self.ctx.config
        cfg = loaded.config
        self.state_dir = loaded.state_dir
        self.store = PaperStore(
            self.state_dir, self.ctx.alerts, cfg.paper.initial_cash, self.ctx.clock,
            keep_closing_fills=cfg.risk.performance_window,  # its win rate reads them (#18)
        )
        self.bars = BarStore(self.state_dir / "bars")
        self.features = LiveFeatures()  # in memory only: rebuilt from the bars after a restart
        self.rule_weights = LiveRuleWeights()  # likewise, for an active built-in rule
        self.cycle_arrays: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]] = {}
        key = IntegrityKey.from_config(loaded)
        self.models = ModelStore(loaded.models_dir, self.ctx.alerts, key)
        self.active_models = ActiveModelCache(self.models, self.models.load_active)
        self.cost_model = CostModel(
            commission_rate=cfg.paper.costs.commission_rate,
            half_spread_bps=cfg.paper.costs.half_spread_bps,
            impact_bps=cfg.paper.costs.impact_bps,
        )
        self.config_limits = RiskLimits(
            max_position_fraction=cfg.risk.max_position_fraction,
            max_notional_per_symbol=cfg.risk.max_notional_per_symbol,
            max_gross_exposure=cfg.risk.max_gross_exposure,
        )
        self.fence = Fence(
            paper_dir(self.state_dir) / "owner.json", self.ctx.name, self.ctx.generation
        )
        self.fence.claim()
        self.book = PaperBook(self.ctx, self.store, self.bars, self.fence, self.cost_model)
        self.book.open()

    @property
    def ledger(self) -> LedgerState:
        """The ledger as last persisted (the book owns it)."""
        return self.book.ledger

    @property
    def problems(self) -> list[str]:
        """Why the persisted ledger does not reconcile (empty when it does)."""
        return self.book.problems

    def persist(self, state: LedgerState) -> None:
        """Write the ledger and its derived files (:meth:`PaperBook.persist`)."""
        self.book.persist(state)

    def on_halt(self, message: Halt) -> None:
        self.book.apply_halt_action(message.reason)

    def handle(self, request: Request) -> Reply:
        match request:
            case TradePaper():
                return self.trade(request)
            case _:
                return super().handle(request)

    # --- the step ------------------------------------------------------------------------------

    def trade(self, request: TradePaper) -> Reply:
        """One trade step (see the module docstring)."""
        if self.problems:
            return self.fail(request, "ledger_inconsistent", "; ".join(self.problems[:5]))
        self.fence.check()  # an abandoned instance that wakes up stops here
        marker = self.store.read_drawdown_halt()
        if marker is not None and not marker.acknowledged:
            self.book.enforce_drawdown_halt()
            return self._reply(request, self.ledger, "drawdown halt", 0, 0, [])
        arrays = self.cycle_arrays = self.bars.readable_arrays()  # the step reads the store once
        bars = new_bars(arrays, self.ledger.as_of_ns)
        if bars.latest_ts is None:
            return self._reply(request, self.ledger, "no bars: holding", 0, 0, [])
        limits = trading_limits(self.state_dir, self.config_limits, self.ctx.alerts)
        step, drawdown, tripped = self._advance(bars, limits, rebase=marker is not None)
        status, (state, orders), failure = self._decide(
            step.state, bars, limits, tripped, step.report.halted
        )
        if failure is None and not bars.marks and state == self.ledger:
            status = "no new bar: holding" if status == "no orders: holding" else status
            return self._reply(request, state, status, 0, 0, [])
        if tripped:
            self.book.write_drawdown_marker(drawdown)
        self.persist(state)
        if marker is not None:
            self.store.clear_drawdown_halt()
            self.ctx.audit.append(
                "drawdown_halt_acknowledged", self.ctx.name, {"as_of": state.as_of}
            )
        if tripped:
            self.book.report_drawdown_halt(drawdown)
        self.book.audit_step(request.cycle_id, state, step.fills, orders, step.report)
        if failure is not None:
            return self.fail(request, failure.reason, str(failure))
        return self._reply(request, state, status, len(step.fills), len(orders), step.warnings)

    def _advance(
        self, bars: NewBars, limits: RiskLimits, *, rebase: bool
    ) -> tuple[Advance, Drawdown, bool]:
        """Fill the open orders at the next bar and mark the new bars; check the drawdown."""
        state = rebase_drawdown(self.ledger) if rebase else self.ledger
        if not bars.marks:
            return Advance(state, [], ExecutionReport(), []), current_drawdown(state), False
        cfg = self.ctx.config.config
        step = advance(
            state,
            bars,
            self.cost_model,
            halted=self.ctx.halt_flag.is_set,
            limits=limits,
            max_volume_share=cfg.paper.max_volume_share,
            remainder_policy=cfg.paper.remainder_policy,
        )
        if rebase:  # the operator accepted the loss up to now, the bars just marked included
            step = step._replace(state=rebase_drawdown(step.state))
        drawdown = current_drawdown(step.state)
        tripped = drawdown.value > cfg.risk.max_portfolio_drawdown_halt
        if tripped:
            self.fence.check()  # a stale instance must not halt the system on stale data
            self.ctx.halt_flag.set()  # at once: nothing may trade after this point
        return step, drawdown, tripped

    def _decide(
        self, state: LedgerState, bars: NewBars, limits: RiskLimits, tripped: bool, stopped: bool
    ) -> tuple[str, tuple[LedgerState, list[Order]], ModelUnavailableError | None]:
        """Plan the next orders unless halted; ``(status, (state, orders), failure)``."""
        if tripped:
            return "drawdown halt", (state, []), None
        if stopped or self.ctx.halt_flag.is_set():
            return "halted: froze", (state, []), None
        try:
            active = self._active_model()
        except ModelUnavailableError as exc:
            return "model unavailable", (state, []), exc
        if active is None:
            return self._without_model(state, bars)
        state = track_model(state, active.model_id)
        try:
            weights = self._targets(active, state, bars, limits)
        except ValueError as exc:
            return (
                "model unavailable",
                (state, []),
                ModelUnavailableError("model_features", str(exc)),
            )
        except (StrategyError, ModelIntegrityError) as exc:  # a strategy artifact that fails
            return "model unavailable", (state, []), ModelUnavailableError("strategy", str(exc))
        state, orders = plan_cycle(
            state,
            weights,
            bars.latest_closes,
            min_order_notional=self.ctx.config.config.paper.min_order_notional,
            rebalance_band=self.ctx.config.config.paper.rebalance_band,  # the backtest's too
            max_weight=clamp_to_ceilings(limits).max_position_fraction,
        )
        status = "traded" if orders else "no orders: holding"
        return status, (state, list(orders)), None

    def _without_model(
        self, state: LedgerState, bars: NewBars
    ) -> tuple[str, tuple[LedgerState, list[Order]], None]:
        """No active model (#17): ``paper.on_no_model`` says ``flatten`` (default: close what the
        last model left, at the next bar) or ``hold``; audited once when a model's positions are
        left without one."""
        if not state.positions:
            return "no active model: holding", (state, []), None
        policy = self.ctx.config.config.paper.on_no_model
        if state.model_id:  # the first step without the model that opened these positions
            self.ctx.audit.append("positions_without_model", self.ctx.name, {
                "previous_model": state.model_id, "policy": policy,
                "positions": sorted(state.positions), "as_of": state.as_of})
            state = track_model(state, "")
        if policy == "hold":
            return "no active model: holding", (state, []), None
        state, orders = plan_cycle(
            state,
            {symbol: 0.0 for symbol in state.positions},
            bars.latest_closes,
            min_order_notional=0.0,
        )
        return "no active model: flattening", (state, list(orders)), None

    def _active_model(self) -> TrainedModel | StrategyModel | None:
        try:
            loaded = self.active_models.get()  # re-verified whenever a file of it changes
        except ModelIntegrityError as exc:
            self.ctx.alerts.raise_alert(
                "critical",
                "active_model_integrity_failed",
                f"{exc}; trading nothing new until a verified model is active",
                actor=self.ctx.name,
            )
            raise ModelUnavailableError("model_integrity", str(exc)) from exc
        except (StateError, ValueError) as exc:
            raise ModelUnavailableError("model_unreadable", str(exc)) from exc
        return loaded[1] if loaded is not None else None

    def _targets(
        self, model: TrainedModel | StrategyModel, state: LedgerState, bars: NewBars,
        limits: RiskLimits,
    ) -> dict[str, float]:
        """Target weights: signals on the symbols with a bar at ``as_of``, sized, then capped."""
        if isinstance(model, StrategyModel):  # services/strategy_targets.py
            arrays = {s: self.cycle_arrays[s] for s in sorted(bars.latest_closes)}
            return strategy_targets(model, self.ctx.config, arrays, ledger_equity(state),
                                    bars.latest_closes, limits, self.rule_weights)
        features = self.features.latest({s: self.cycle_arrays[s] for s in bars.latest_closes})
        if features.empty:
            return {}
        signals = model.signals(features)
        directions = {
            str(symbol): int(d) for symbol, d in zip(features.index, signals.direction, strict=True)
        }
        weights = signal_weights(directions, limits)
        return cap_target_weights(weights, ledger_equity(state), bars.latest_closes, limits)

    def _reply(
        self,
        request: TradePaper,
        state: LedgerState,
        status: str,
        fills: int,
        planned: int,
        warnings: list[str],
    ) -> PaperTraded:
        return PaperTraded(
            request_id=request.request_id,
            status=status,
            model_id=state.model_id,
            as_of=state.as_of,
            fills=fills,
            orders_planned=planned,
            open_orders=len(state.open_orders),
            positions=len(state.positions),
            equity=ledger_equity(state),
            cash=state.cash,
            drawdown=current_drawdown(state).value,
            warnings=warnings[:20],
        )
