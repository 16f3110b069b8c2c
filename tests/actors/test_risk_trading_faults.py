"""Faults, halts and the drawdown kill switch for the RiskGovernor and the PaperTrader."""

from __future__ import annotations

import json
import queue
import random
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest
from _support.paper_support import Rig, read_json, step_data
from _support.support import alert_codes, audit_actions, pump_until

from aistock_actors.actors.base import ActorContext
from aistock_actors.actors.paper_trader import PaperTrader
from aistock_actors.config import LoadedConfig
from aistock_actors.core.trading.ledger import LedgerState, reconcile
from aistock_actors.messages import Message
from aistock_actors.messages.trading import PaperTraded, TradePaper
from aistock_actors.runtime import faults
from aistock_actors.runtime.faults import FaultPlan, FaultSpec
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.bars import BarStore
from aistock_actors.store.ingest import ingest_directory
from aistock_actors.store.state import read_halt


@pytest.fixture()
def plan_slot() -> Iterator[list[FaultPlan]]:
    plans: list[FaultPlan] = []
    yield plans
    for plan in plans:
        plan.release.set()
    faults.install(None)


def install(plans: list[FaultPlan], *specs: FaultSpec) -> FaultPlan:
    plan = FaultPlan(list(specs))
    plans.append(plan)
    faults.install(plan)
    return plan


def traded_rig(tmp_path: Path, **sections: object) -> Rig:
    """Orders planned on bar 200, filled on bar 201, new orders open again."""
    rig = Rig(tmp_path, **sections)  # type: ignore[arg-type]
    rig.once()
    rig.grow(201)
    rig.once()
    assert rig.ledger().positions and rig.ledger().open_orders
    return rig


def adverse_bar(rig: Rig, move: float) -> dict[str, dict[str, float]]:
    """The next bar moving every held position ``move`` (0.5 = half) against it."""
    positions = rig.ledger().positions
    rows = {}
    for symbol in rig.frames:
        close = float(rig.frames[symbol].iloc[rig.shown - 1]["close"])
        pos = positions.get(symbol)
        factor = 1.0 if pos is None else (1.0 - move if pos.quantity > 0 else 1.0 + move)
        rows[symbol] = {"open": close, "high": max(close, close * factor),
                        "low": min(close, close * factor), "close": close * factor,
                        "volume": 1e9}
    return rows


# --- per-actor faults -------------------------------------------------------------------------


@pytest.mark.parametrize("child", ["paper_trader", "risk_governor"])
@pytest.mark.parametrize("kind", ["raise", "hang"])
def test_a_crashed_or_hung_actor_is_restarted_from_disk_with_its_files_intact(
    tmp_path: Path, plan_slot: list[FaultPlan], child: str, kind: str,
) -> None:
    rig = traded_rig(tmp_path, supervision={"step_timeouts": {"trade": 1.0, "risk": 1.0}})
    files = {"paper_trader": tmp_path / "state/paper/ledger.json",
             "risk_governor": tmp_path / "state/risk/limits.json"}
    before = files[child].read_bytes()
    message = "TradePaper" if child == "paper_trader" else "AssessRisk"
    plan = install(plan_slot, FaultSpec(actor=child, kind=kind, message_type=message, seconds=30))
    rig.grow(202)
    sup = rig.supervisor()
    try:
        stale = sup.children[child].ref
        summary = rig.cycle(sup)
        step = "trade" if child == "paper_trader" else "risk"
        expected = "crashed" if kind == "raise" else "timeout"
        assert step_data(summary, step)["step_status"] == expected
        assert summary.outcome == "failed" and sup.state.consecutive_failures == 1
        assert files[child].read_bytes() == before  # nothing half-done reached the disk
        pump_until(sup, lambda: sup.children[child].generation == 2
                   and sup.children[child].ref is not None)
        again = rig.cycle(sup)  # generation 2, state reloaded from disk
        assert again.outcome == "succeeded" and sup.state.consecutive_failures == 0
        rig.grow(203)  # move on, so a late write by the old instance would put the past back
        assert rig.cycle(sup).outcome == "succeeded"
        after = files[child].read_bytes()
        plan.release.set()  # the abandoned instance wakes up and must not write
        deadline = time.monotonic() + 10
        while stale.is_alive() and time.monotonic() < deadline:
            sup.pump(0.02)
        assert not stale.is_alive()
        assert files[child].read_bytes() == after
    finally:
        sup.stop()
    assert sup.state.restarts == {child: 1}
    state = rig.ledger()
    assert reconcile(state) == [] and state.as_of == rig.ledger().as_of
    assert len(set(state.applied_order_ids)) == len(state.applied_order_ids)


class CrashBeforePersist(PaperTrader):
    """Dies after computing fills in memory, before the ledger is written (once)."""

    crashed: ClassVar[list[int]] = []

    def persist(self, state: LedgerState) -> None:
        if not type(self).crashed and len(state.fills) > len(self.ledger.fills):
            type(self).crashed.append(len(state.fills) - len(self.ledger.fills))
            raise RuntimeError("killed between the fills and the ledger write")
        super().persist(state)


def test_a_crash_between_fill_and_persist_means_no_fill_and_the_rerun_fills_once(
    tmp_path: Path,
) -> None:
    control = Rig(tmp_path / "control")
    control.once()
    control.grow(201)
    control.once()
    expected = control.ledger().fills

    rig = Rig(tmp_path / "crash")
    rig.once()
    rig.grow(201)
    before = rig.ledger_bytes()
    costs_file = tmp_path / "crash/state/paper/costs.json"
    assert not costs_file.exists()  # no fill yet
    sup = rig.supervisor(trader=CrashBeforePersist)
    try:
        first = rig.cycle(sup)
        assert step_data(first, "trade")["step_status"] == "crashed"
        assert CrashBeforePersist.crashed == [len(expected)]
        assert rig.ledger_bytes() == before  # the fills never happened
        assert not costs_file.exists()
        pump_until(sup, lambda: sup.children["paper_trader"].ref is not None
                   and sup.children["paper_trader"].generation == 2)
        rerun = rig.cycle(sup)
        assert step_data(rerun, "trade")["fills"] == len(expected)
        rig.cycle(sup)  # and once more: nothing new, nothing twice
    finally:
        sup.stop()
    state = rig.ledger()
    assert [(f.order_id, f.quantity, f.price) for f in state.fills] == [
        (f.order_id, f.quantity, f.price) for f in expected]
    assert reconcile(state) == []
    assert read_json(tmp_path / "crash/state/paper/costs.json")["fills_recorded"] == len(expected)


def test_a_tampered_active_model_trades_nothing_new_and_alerts_critical(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.once()
    artifact = tmp_path / "models" / "m-test" / "model.joblib"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    rig.grow(201)
    summary = rig.once()
    trade = step_data(summary, "trade")
    assert trade["step_status"] == "failed" and "model_integrity" in trade["detail"]
    assert "active_model_integrity_failed" in alert_codes(rig.state_dir, "critical")
    state = rig.ledger()
    assert state.fills and state.open_orders == []  # last cycle's orders filled; nothing new
    assert state.as_of.startswith(str(rig.frames["SYM000"].index[200].date()))


def test_a_ledger_that_does_not_reconcile_is_refused_not_traded_on(tmp_path: Path) -> None:
    rig = traded_rig(tmp_path)
    path = rig.state_dir / "paper" / "ledger.json"
    data = json.loads(path.read_text())
    data["cash"] += 1_000.0  # money from nowhere: the fill log says otherwise
    path.write_text(json.dumps(data))
    rig.grow(202)
    trade = step_data(rig.once(), "trade")
    assert trade["step_status"] == "failed" and "ledger_inconsistent" in trade["detail"]
    assert "paper_ledger_inconsistent" in alert_codes(rig.state_dir, "critical")
    assert json.loads(path.read_text()) == data  # untouched for the operator to inspect


# --- halts ------------------------------------------------------------------------------------


def test_drawdown_beyond_the_limit_trips_the_kill_switch_and_flattens(tmp_path: Path) -> None:
    rig = traded_rig(tmp_path, risk={"max_portfolio_drawdown_halt": 0.1, "halt_action": "flatten"})
    rig.append_bar(adverse_bar(rig, 0.5))
    sup = rig.supervisor()
    try:
        summary = rig.cycle(sup)
        # The trip reaches the supervisor before the step's reply: the cycle ends halted.
        assert summary.outcome == "halted" and sup.halted
        pump_until(sup, lambda: "positions_flattened" in audit_actions(rig.state_dir))
    finally:
        sup.stop()
    halt = read_halt(rig.state_dir)
    assert halt is not None and halt.kind == "kill_switch" and "drawdown" in halt.message
    actions = audit_actions(rig.state_dir)
    assert "max_drawdown_halt" in actions and "kill_switch_activated" in actions
    assert "kill_switch_activated" in alert_codes(rig.state_dir, "critical")
    (record,) = [r for r in _audit(rig) if r["action"] == "max_drawdown_halt"]
    assert record["details"]["drawdown"] > 0.1
    state = rig.ledger()
    assert state.positions == {} and state.open_orders == [] and reconcile(state) == []
    # No bar after the halt yet: the "next price" is the newest close (modelled costs on top).
    last_close = {s: float(f.iloc[rig.shown - 1]["close"]) for s, f in rig.frames.items()}
    (flattened,) = [r["details"] for r in _audit(rig) if r["action"] == "positions_flattened"]
    ids = {f["order_id"] for f in flattened["fills"]}
    flat = [f for f in state.fills if f.order_id in ids]
    assert flat and all(f.reference_price == last_close[f.symbol] for f in flat)
    # The operator acknowledges with --unkill; trading resumes from the current equity.
    message, still_halted = operator.unkill(rig.loaded)
    assert not still_halted and "drawdown halt acknowledged" in message
    rig.append_bar(adverse_bar(rig, 0.0))
    summary = rig.once()
    assert summary.outcome == "succeeded" and step_data(summary, "trade")["status"] == "traded"
    assert "drawdown_halt_acknowledged" in audit_actions(rig.state_dir)
    assert not (rig.state_dir / "paper" / "drawdown_halt.json").exists()
    assert read_halt(rig.state_dir) is None


def _audit(rig: Rig) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in (rig.state_dir / "audit/log.jsonl").read_text().splitlines()]


def test_freeze_keeps_positions_and_cancels_open_orders_on_halt(tmp_path: Path) -> None:
    rig = traded_rig(tmp_path)
    before = rig.ledger()
    sup = rig.supervisor()
    try:
        (rig.state_dir / "KILL_SWITCH").touch()
        pump_until(sup, lambda: "open_orders_cancelled_on_halt" in audit_actions(rig.state_dir))
    finally:
        sup.stop()
    after = rig.ledger()
    assert after.positions == before.positions and after.open_orders == []
    assert {o.order_id for o in before.open_orders} <= set(after.applied_order_ids)
    assert after.fills == before.fills and reconcile(after) == []


# --- the halt flag against orders in flight, at the actor ---------------------------------------


class RecordingFlag(threading.Event):
    """The shared halt flag, recording when each check began and what it saw; the
    ``trigger_at``-th check wakes the thread that will set it (orders are then in flight)."""

    def __init__(self, trigger_at: int) -> None:
        super().__init__()
        self.checks: list[tuple[int, bool]] = []
        self.trigger_at = trigger_at
        self.reached = threading.Event()

    def is_set(self) -> bool:
        started = time.perf_counter_ns()
        result = super().is_set()
        self.checks.append((started, result))
        if len(self.checks) == self.trigger_at:
            self.reached.set()
        return result


def _context(
    loaded: LoadedConfig, flag: threading.Event, inbox: queue.Queue[Message]
) -> ActorContext:
    state = loaded.state_dir
    return ActorContext(name="paper_trader", generation=1, report=inbox.put, halt_flag=flag,
                        config=loaded, audit=AuditLog(state / "audit" / "log.jsonl"),
                        alerts=AlertSink(state / "alerts"))


@pytest.fixture()
def fast_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # the halting thread gets the GIL within microseconds
    yield
    sys.setswitchinterval(old)


@pytest.mark.usefixtures("fast_switching")
def test_halt_from_another_thread_stops_the_traders_fills_at_once(tmp_path: Path) -> None:
    template = Rig(tmp_path / "template", n_symbols=40, threshold=0.0)
    template.once()  # ~40 open orders, one per symbol
    template.grow(201)
    ingest_directory(tmp_path / "template" / "data", BarStore(template.state_dir / "bars"))
    n_orders = len(template.ledger().open_orders)
    assert n_orders >= 20
    rng = random.Random(3)
    mid_run = 0
    for i in range(20):
        root = tmp_path / f"run{i}"
        shutil.copytree(tmp_path / "template", root)
        config = msgspec.structs.replace(template.loaded.config, state_dir=str(root / "state"),
                                         models_dir=str(root / "models"))
        loaded = msgspec.structs.replace(template.loaded, config=config)
        # Checks 1 and 2 are the actor's own at start; the flag is set from another thread
        # while the trade step's fills are being checked.
        flag, inbox = RecordingFlag(trigger_at=2 + rng.randrange(1, n_orders)), queue.Queue()
        halted_at: list[int] = []

        def halter(flag: RecordingFlag = flag, halted_at: list[int] = halted_at) -> None:
            flag.reached.wait(30)
            flag.set()
            halted_at.append(time.perf_counter_ns())

        thread = threading.Thread(target=halter)
        thread.start()
        ref = PaperTrader.start(_context(loaded, flag, inbox))
        try:
            ref.tell(TradePaper(request_id=f"r{i}", cycle_id=f"c{i}"))
            reply = inbox.get(timeout=30)
            flag.reached.set()
            thread.join(timeout=30)
        finally:
            ref.stop(timeout=10)
        halt_time = halted_at[0]
        assert isinstance(reply, PaperTraded)
        passed = [t for t, seen in flag.checks if not seen]
        assert all(t < halt_time for t in passed), "a check that began after the halt let a fill by"
        raw = (root / "state/paper/ledger.json").read_bytes()
        state = msgspec.json.decode(raw, type=LedgerState)
        assert len(state.fills) <= len(passed) and reconcile(state) == []
        if 0 < len(state.fills) < n_orders:
            mid_run += 1
            assert state.open_orders == [] and reply.orders_planned == 0
        shutil.rmtree(root)
    assert mid_run > 0, "the halt never landed while orders were filling"
