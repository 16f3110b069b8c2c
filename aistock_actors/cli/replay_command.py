"""``python supervisor.py CONFIG --replay [--from DATE] [--to DATE]``: a market replay.

Refuses, in one line and before writing anything, a state directory a running autopilot holds
(exit 4), dates outside the data, ``--from`` after ``--to``, an empty CSV folder, and a state
directory holding a live daemon's history (exit 2). Then runs the remaining steps
(:mod:`aistock_actors.runtime.replay`) and prints the summary: exit 0 at the end or after a
SIGTERM/SIGINT (the first lets the running step finish, a second aborts it), 3 when halted.
On a terminal a progress bar shows the market date, the paper equity and the active model; in a
pipe nothing but the summary (and warnings) is printed.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

from aistock_actors.cli.exit_codes import EXIT_HALTED, EXIT_LOCKED, EXIT_OK, EXIT_USAGE
from aistock_actors.cli.runs import _start_supervisor
from aistock_actors.config import LoadedConfig
from aistock_actors.core.replay.summary import Account, ReplaySummary, market_date
from aistock_actors.errors import DataError, ReplayError
from aistock_actors.runtime import replay
from aistock_actors.runtime.clock import SystemClock, from_epoch_ns, iso_utc
from aistock_actors.store.atomic import sync_to_disk, syncing
from aistock_actors.store.lock import DaemonLock, lock_holder
from aistock_actors.store.replay import ReplayState, save_replay

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger("aistock_actors.cli.replay")


def run_replay(loaded: LoadedConfig, start: str | None, end: str | None) -> int:
    """``--replay``: refuse bad input in one line, else replay and print the summary."""
    holder = lock_holder(loaded.state_dir)
    if holder is not None:
        print(f"aistock: refused: {loaded.state_dir} is in use by a running autopilot process "
              f"({holder}); a replay needs a state directory of its own", file=sys.stderr)
        return EXIT_LOCKED
    clock = SystemClock()
    try:
        window = replay.plan(loaded, start, end)
        state = replay.prepare(loaded, window, start_given=start is not None,
                               wall_now=iso_utc(clock.now()))
    except (ReplayError, DataError) as exc:
        print(f"aistock: replay refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if state.status == "complete" and state.steps_done >= state.steps_total:
        print(render_summary(state.summary or replay.collect_summary(loaded, state, window),
                             state))
        return EXIT_OK
    stop_after_step, abort_step = _signals()
    synced = syncing()
    with DaemonLock(loaded.state_dir, "replay"):
        sync_to_disk(False)  # rebuilt from history; a SIGKILL loses nothing (store/atomic.py)
        try:
            save_replay(loaded.state_dir, state)  # the state dir is a replay's before any cycle
            supervisor = _start_supervisor(loaded, abort_step, clock)
            view = ReplayProgress(sys.stderr)
            runner = replay.Replay(loaded, window, state, supervisor, clock, on_step=view.update)
            try:
                with view:
                    status = runner.run(stop_after_step)
            finally:
                supervisor.stop()
            state.summary = replay.collect_summary(loaded, state, window)
            save_replay(loaded.state_dir, state)
        finally:
            sync_to_disk(synced)
        halt = supervisor.halt
    print(render_summary(state.summary, state))
    if status == "halted":
        reason = f"{halt.reason}: {halt.message}" if halt is not None else "halted"
        print(f"replay HALTED at {_at(state)} ({reason}). Fix the cause, then --unkill or "
              "--resume, and --replay again to continue.", file=sys.stderr)
        return EXIT_HALTED
    if status == "stopped":
        print(f"replay stopped after {_at(state)}: run --replay again to continue.",
              file=sys.stderr)
    return EXIT_OK


def _at(state: ReplayState) -> str:
    return market_date(state.done) if state.done else "its first step"


def _signals() -> tuple[threading.Event, threading.Event]:
    """SIGTERM/SIGINT: the first stops after the running step, a second aborts it."""
    after_step, abort = threading.Event(), threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if after_step.is_set():
            log.warning("received %s again: aborting the running step", name)
            abort.set()
        else:
            log.warning("received %s: stopping after the running step", name)
            after_step.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return after_step, abort


class ReplayProgress:
    """A rich progress bar on a terminal (market date, equity, active model); nothing elsewhere."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> ReplayProgress:
        try:
            shown = self.stream.isatty()
        except (AttributeError, ValueError, OSError):
            shown = False
        if shown:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("replay"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[note]}"),
                console=Console(file=self.stream),
                transient=True,
                redirect_stderr=True,
                redirect_stdout=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("replay", total=None, note="starting")
        return self

    def update(self, step: replay.StepDone) -> None:
        """Show one finished step."""
        if self.progress is None or self.task is None:
            return
        equity = f"equity ${step.equity:,.0f}" if step.equity is not None else "equity -"
        date = market_date(iso_utc(from_epoch_ns(step.market_time)))
        note = f"{date}  {equity}  model {step.model_id or 'none'}"
        self.progress.update(self.task, completed=step.done, total=step.total, note=note)

    def __exit__(self, *_exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{value:.2%}"  # NaN: no period to annualise


def _account_rows(paper: Account | None, bench: Account | None) -> list[str]:
    rows = [("final equity", _money, "final_equity"), ("total return", _pct, "total_return"),
            ("CAGR", _pct, "cagr"), ("Sharpe", lambda v: f"{v:.2f}", "sharpe"),
            ("max drawdown", _pct, "max_drawdown"), ("turnover", lambda v: f"{v:.1f}x", "turnover"),
            ("costs", _money, "costs"), ("trades", lambda v: f"{v:,}", "trades")]
    lines = [f"  {'':<22}{'paper account':>16}{'buy-and-hold':>16}"]
    for label, fmt, name in rows:
        cells = [fmt(getattr(acct, name)) if acct is not None else "-" for acct in (paper, bench)]
        lines.append(f"  {label:<22}{cells[0]:>16}{cells[1]:>16}")
    return lines


def _events(events: list[Any], empty: str) -> str:
    if not events:
        return empty
    shown = ", ".join(f"{e.what} on {e.date}" for e in events[:5])
    more = f" (+{len(events) - 5} more)" if len(events) > 5 else ""
    return f"{len(events)}: {shown}{more}"


def render_summary(summary: ReplaySummary, state: ReplayState) -> str:
    """The end-of-replay summary (also printed by a ``--replay`` on a finished replay)."""
    s = summary
    status = state.status.upper()
    lines = [
        f"replay {s.period_start} .. {s.period_end or '-'}: {status} ({s.steps_done} of "
        f"{s.steps_total} bars; {s.cycles} cycles, {s.cycles_failed} failed, "
        f"{s.cycles_degraded} degraded; {state.wall_seconds:.0f}s of replaying)",
        f"  candidates trained    {s.candidates}",
        "  promotions            " + _events(
            s.promotions, "none: no candidate passed the promotion gate, so the paper account "
            "never traded" if s.candidates else "none: no candidate was trained"),
    ]
    if s.pending:
        lines.append(f"  pending approval      {s.pending} (--approve ID; supervised mode)")
    rejected = sum(s.rejections.values())
    by_stage = ", ".join(f"{k} {v}" for k, v in s.rejections.items())
    lines.append(f"  rejections            {rejected}" + (f" ({by_stage})" if rejected else ""))
    changes = sum(s.risk_changes.values())
    reasons = ", ".join(f"{k} {v}" for k, v in s.risk_changes.items())
    lines.append(f"  risk changes          {changes}" + (f" ({reasons})" if changes else ""))
    lines.append("  rollbacks             " + _events(s.rollbacks, "none"))
    lines.append("  retirements           " + _events(s.retirements, "none"))
    lines.append("  halts                 " + _events(s.halts, "none"))
    lines.extend(_account_rows(s.account, s.benchmark))
    lines.append("  (buy-and-hold: the same symbols, equal weights at the first bar, held; "
                 "pays commission and half spread once)")
    lines.append("then: --status (the state now), --report (everything against market dates)")
    return "\n".join(lines)
