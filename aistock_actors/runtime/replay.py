"""Market replay: months of autonomous operation in minutes, on the production actors.

A simulated market clock walks the union of the CSV folder's bar times one bar at a time. At
each step the market time is set on the Supervisor's clock (:meth:`SystemClock.set_market_time`),
so the DataIngestor reads only the rows at or before it (later ones are "not written yet") and
one real supervised cycle runs (:meth:`Supervisor.run_once`): the same actors, messages, state
files, audit log, alerts, halts and kill switch as ``--daemon``. Audit records and alerts carry
the market time (``as_of``) beside the wall time, and cycle ids (hence model and order ids) the
market time alone, so the same data, config and seed give the same ids, fills and verdicts.

Resumption: ``state/replay.json`` (:mod:`aistock_actors.store.replay`) records the last
completed step after every cycle. A step is completed when its cycle finished (succeeded,
failed or degraded); its ``supervisor.json`` record comes first, so the later of the two marks
wins and a crash between them never re-runs a finished step (which would shift every later
cycle's sequence number, and with it the model and order ids). A halted or stopped cycle is
run again: the ledger's order ids make the fills it already made apply once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from aistock_actors.config import LoadedConfig
from aistock_actors.core.backtest.frequency import infer_bars_per_year
from aistock_actors.core.model.history import min_history_bars, years_floor_bars
from aistock_actors.core.replay import account as accounts
from aistock_actors.core.replay import summary as figures
from aistock_actors.core.replay.history import history_needed
from aistock_actors.core.replay.plan import ReplayWindow, parse_date, resolve_window
from aistock_actors.errors import ReplayError
from aistock_actors.runtime.clock import SystemClock, from_epoch_ns, iso_utc
from aistock_actors.services.pipeline_params import model_params
from aistock_actors.store.audit import read_audit
from aistock_actors.store.bars import BarStore, closes_at
from aistock_actors.store.ingest import csv_timestamps
from aistock_actors.store.ledger import PaperStore
from aistock_actors.store.promotion import PromotionStore
from aistock_actors.store.replay import (
    ReplayState,
    ReplayStatus,
    foreign_history,
    load_replay,
    save_replay,
)
from aistock_actors.store.state import CycleSummary, load_supervisor_state

if TYPE_CHECKING:
    from aistock_actors.runtime.supervisor import Supervisor

log = logging.getLogger(__name__)

COMPLETED_OUTCOMES = frozenset({"succeeded", "failed", "degraded"})
"""Cycle outcomes that complete a replay step (halted and aborted ones are run again)."""


@dataclass(frozen=True)
class StepDone:
    """What the progress display shows after each step."""

    done: int
    total: int
    market_time: int
    """ns UTC."""
    equity: float | None
    model_id: str | None


def plan(loaded: LoadedConfig, start: str | None, end: str | None) -> ReplayWindow:
    """The steps ``--replay [--from START] [--to END]`` walks; :class:`ReplayError` (or a
    ``DataError`` for the CSV folder) says why not in one line."""
    if loaded.config.data.source != "csv":
        raise ReplayError(
            f"a replay walks a CSV folder's history (data.source \"csv\"), not "
            f"{loaded.config.data.source!r}: write it with --download --csv DIR first"
        )
    start_ns = parse_date(start) if start else None
    end_ns = parse_date(end, end_of_day=True) if end else None
    per_symbol = csv_timestamps(loaded.csv_dir)
    cfg = loaded.config
    params = model_params(cfg)
    # The default --from: the first bar at which the candidate trains AND its walk-forward
    # backtest (and each fold's meta-labeler) has training data in every split (#13).
    required = history_needed(params, cfg.backtest.n_splits, cfg.training.embargo_bars,
                              floor=min_history_bars(params, cfg.backtest.n_splits))
    longest = max(per_symbol.values(), key=len, default=None)
    if longest is not None and len(longest) >= 2:  # and training.min_history_years of its bars
        per_year = infer_bars_per_year(pd.DatetimeIndex(pd.to_datetime(longest, utc=True)))
        required = max(required, years_floor_bars(cfg.training.min_history_years, per_year))
    return resolve_window(
        per_symbol, required, start=start_ns, end=end_ns, start_text=start, end_text=end
    )


def _iso(ns: int) -> str:
    return iso_utc(from_epoch_ns(ns))


def _ns(text: str) -> int:
    return parse_date(text)


def prepare(
    loaded: LoadedConfig, window: ReplayWindow, *, start_given: bool, wall_now: str
) -> ReplayState:
    """The replay state to run on: a fresh one for an empty state directory, or the recorded
    one (its ``--to`` moved to ``window``'s) to continue. Writes nothing; raises
    :class:`ReplayError` for a state directory this replay must not use."""
    try:
        existing = load_replay(loaded.state_dir)
    except ValueError as exc:
        raise ReplayError(f"cannot continue: {exc}") from None
    csv_dir = str(Path(loaded.csv_dir).resolve())
    first, last = int(window.steps[0]), int(window.steps[-1])
    if existing is None:
        foreign = foreign_history(loaded.state_dir, loaded.models_dir)
        if foreign:
            raise ReplayError(
                f"{loaded.state_dir} holds history that is not a replay's ({foreign[0]}); "
                "replay into an empty state_dir and models_dir (e.g. a copy of the config "
                "with other paths)"
            )
        return ReplayState(
            csv_dir=csv_dir, first_step=_iso(first), last_step=_iso(last),
            steps_total=window.total, started_at=wall_now, updated_at=wall_now,
        )
    if existing.csv_dir != csv_dir:
        raise ReplayError(
            f"{loaded.state_dir} holds a replay of {existing.csv_dir}, not of {csv_dir}"
        )
    recorded_first = _ns(existing.first_step)
    if start_given and first != recorded_first:
        raise ReplayError(
            f"{loaded.state_dir} holds a replay from {figures.market_date(existing.first_step)}; "
            "leave --from out to continue it, or use an empty state_dir"
        )
    done = _ns(existing.done) if existing.done else None
    if done is not None and last < done:
        raise ReplayError(
            f"--to {figures.market_date(_iso(last))} is before the last completed step "
            f"{figures.market_date(existing.done or '')}"
        )
    total = int(np.searchsorted(window.timeline, last, side="right")) - int(
        np.searchsorted(window.timeline, recorded_first, side="left")
    )
    return msgspec.structs.replace(existing, last_step=_iso(last), steps_total=total)


def window_of(state: ReplayState, window: ReplayWindow) -> ReplayWindow:
    """The steps of ``state`` on ``window``'s timeline (a continued replay keeps its start)."""
    timeline = window.timeline
    first = int(np.searchsorted(timeline, _ns(state.first_step), side="left"))
    last = int(np.searchsorted(timeline, _ns(state.last_step), side="right")) - 1
    return ReplayWindow(timeline=timeline, first=first, last=last)


def completed_until(state: ReplayState, last_cycle: CycleSummary | None) -> int | None:
    """Market time (ns) of the last completed step: ``replay.json``'s, or the last finished
    cycle's when a crash came between its ``supervisor.json`` record and ``replay.json``."""
    done = _ns(state.done) if state.done else None
    if last_cycle is None or last_cycle.outcome not in COMPLETED_OUTCOMES:
        return done
    cycle_ns = figures.cycle_time_ns(last_cycle.cycle_id)
    if cycle_ns is None:
        return done
    return cycle_ns if done is None or cycle_ns > done else done


class Replay:
    """Drives one started supervisor through the replay's remaining steps."""

    def __init__(
        self,
        loaded: LoadedConfig,
        window: ReplayWindow,
        state: ReplayState,
        supervisor: Supervisor,
        clock: SystemClock,
        *,
        on_step: Callable[[StepDone], None] | None = None,
    ) -> None:
        self.loaded = loaded
        self.window = window_of(state, window)
        self.state = state
        self.supervisor = supervisor
        self.clock = clock
        self.on_step = on_step

    def remaining(self) -> NDArray[np.int64]:
        """The steps not yet completed."""
        steps = self.window.steps
        done = completed_until(self.state, self.supervisor.state.last_cycle)
        if done is None:
            return steps
        # Cycle ids carry the market time to the second: a step within that second is done.
        return steps[steps // 10**9 > done // 10**9]

    def run(self, stop: threading.Event) -> ReplayStatus:
        """Run the remaining steps until the end, a halt, or ``stop``; record the outcome."""
        todo = self.remaining()
        self.state.runs += 1
        completed = len(self.window.steps) - len(todo)
        self._mark_done(completed, int(self.window.steps[completed - 1]) if completed else None)
        status: ReplayStatus = "complete"
        for ts in todo:
            if stop.is_set():
                status = "stopped"
                break
            self.clock.set_market_time(from_epoch_ns(int(ts)))
            self.supervisor.pump(0.0)  # a kill switch set between steps halts before the next
            began = self.clock.monotonic()
            cycle = self.supervisor.run_once()
            self.state.wall_seconds += self.clock.monotonic() - began
            if cycle is None or cycle.outcome == "halted":
                status = "halted"
                break
            if cycle.outcome == "aborted":
                status = "stopped"
                break
            self._mark_done(self.state.steps_done + 1, int(ts))
            if self.on_step is not None:
                self.on_step(_step_done(self.state, int(ts), cycle))
        self.state.status = status
        self._save()
        return status

    def _mark_done(self, steps_done: int, ts: int | None) -> None:
        self.state.steps_done = steps_done
        if ts is not None:
            self.state.done = _iso(ts)
        self._save()

    def _save(self) -> None:
        self.state.updated_at = iso_utc(self.clock.now())
        save_replay(self.loaded.state_dir, self.state)


def _step_done(state: ReplayState, ts: int, cycle: CycleSummary) -> StepDone:
    trade = next((s for s in cycle.steps if s.name == "trade" and s.status == "ok"), None)
    equity = trade.data.get("equity") if trade is not None else None
    model = trade.data.get("model_id") if trade is not None else None
    return StepDone(
        done=state.steps_done,
        total=state.steps_total,
        market_time=ts,
        equity=float(equity) if isinstance(equity, (int, float)) else None,
        model_id=str(model) if model else None,
    )


# --- the summary ---------------------------------------------------------------------------------


def collect_summary(
    loaded: LoadedConfig, state: ReplayState, window: ReplayWindow
) -> figures.ReplaySummary:
    """The figures of the replay so far, from the files it left (read-only)."""
    state_dir = loaded.state_dir
    records, _ = read_audit(state_dir / "audit" / "log.jsonl")
    manifest = PromotionStore(state_dir, None).load_history()  # archived verdicts included
    counts = figures.lifecycle(records, manifest)
    sup = load_supervisor_state(state_dir, None)
    cfg = loaded.config
    paper = PaperStore(state_dir, None, cfg.paper.initial_cash)
    account = benchmark = None
    steps = window_of(state, window).steps[: state.steps_done]
    if paper.ledger_path.exists():
        ledger = paper.load_ledger()
        curve = [(_ns(t), v) for t, v in paper.equity.curve_since(0, ledger)]  # whole (#18)
        fills = [(f.quantity, f.price, f.reference_price, f.commission)
                 for f in paper.fills_since(0, ledger)]  # the archived fills too (#18)
        account = accounts.paper_account(curve, ledger.initial_cash, fills)
    if len(steps):
        costs = cfg.paper.costs
        entry_cost = costs.commission_rate + costs.half_spread_bps / 10_000.0
        closes = closes_at(BarStore(state_dir / "bars"), steps)
        benchmark = accounts.buy_and_hold(steps, closes, cfg.paper.initial_cash, entry_cost)
    return figures.ReplaySummary(
        period_start=figures.market_date(state.first_step),
        period_end=figures.market_date(state.done) if state.done else None,
        steps_done=state.steps_done,
        steps_total=state.steps_total,
        cycles=sup.cycles_total,
        cycles_failed=sup.cycles_failed,
        cycles_degraded=sup.cycles_degraded,
        account=account,
        benchmark=benchmark,
        wall_seconds=round(state.wall_seconds, 1),
        **counts,
    )
