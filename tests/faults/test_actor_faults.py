"""Every actor x every fault, through the production wiring and a real Supervisor.

For each of the eight children of ``wiring.default_specs()`` the fault-injection seam injects an
exception in a handler, a hang past the timeout, a slow reply, a malformed message and a failure
in ``on_start`` (40 cases). Each case copies a prepared state (planted-pattern data, one cycle
run: a model promoted and trading), adds a bar, runs two cycles and checks what the manual
promises:

- the actor is restarted as a new generation that reloaded its state from disk (``load_state``
  ran again), and the restart is counted in ``supervisor.json``, ``--status --json``
  (``operator.status``) and ``/metrics`` (``aistock_actor_restarts_total``, over real HTTP);
- a step actor's crash, hang or malformed message fails the cycle (``crashed``/``timeout``), is
  counted (``cycles_failed``, ``consecutive_failures``), raises the step's alert and applies its
  failure policy: ingestion -> the later steps are skipped and the next cycle ingests the missed
  bar; training -> the previous model stays active; backtest -> promotion skipped; judge, risk and
  trade -> their files are untouched and the next cycle succeeds;
- a watcher's fault (no step) restarts it without failing any cycle; a hung watcher is restarted
  by the watchdog;
- a slow reply inside the timeout is just a success; an ``on_start`` failure is one restart.

Then: restart intensity and the consecutive-failure cap halt exactly when they should, and the
file kill switch halts within a bound while any one actor is hung.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from _support.fault_harness import (
    ACTORS,
    MESSAGE_OF,
    STEP_OF,
    check_state,
    copy_prepared,
    installed,
    reliability_config,
)
from _support.lifecycle_support import step
from _support.opsupport import http_get, metric_samples
from _support.support import alert_codes, pump_until
from _support.waiting import wait_until

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.config import load_config
from aistock_actors.core.supervision.policy import FAILURE_ALERT_CODES, SKIP_ON_FAILURE
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.faults import FaultPlan, FaultSpec
from aistock_actors.runtime.supervisor import Supervisor
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.state import CycleSummary

KINDS = ("raise", "hang", "slow", "malformed", "on_start")
SLOW = 0.3
HANG_TIMEOUT = 0.8
"""The faulted step's timeout in the hang cases (a healthy step takes < 0.2 s)."""
STEP_TIMEOUTS = {s: 20.0 for s in STEP_OF.values()}
Files = dict[str, bytes | None]


@pytest.fixture()
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Records (actor, generation) of every ``load_state`` of the production actors."""
    seen: list[tuple[str, int]] = []
    for spec in default_specs():
        cls = spec.actor_class
        original = cls.load_state

        def recording(self: SupervisedActor, _original: Any = original) -> None:
            seen.append((self.ctx.name, self.ctx.generation))
            _original(self)

        monkeypatch.setattr(cls, "load_state", recording)
    yield seen


def snapshot(tmp: Path) -> Files:
    files = {
        "pointer": tmp / "models" / "active" / "model.json",
        "manifest": tmp / "state" / "promotion" / "manifest.json",
        "limits": tmp / "state" / "risk" / "limits.json",
        "ledger": tmp / "state" / "paper" / "ledger.json",
    }
    return {k: p.read_bytes() if p.exists() else None for k, p in files.items()}


def fault_plan(actor: str, kind: str) -> FaultPlan:
    if kind == "on_start":
        return FaultPlan([FaultSpec(actor=actor, kind="on_start")])
    seconds = {"hang": 60.0, "slow": SLOW}.get(kind, 30.0)
    spec = msgspec.convert({"actor": actor, "kind": kind, "message_type": MESSAGE_OF[actor],
                            "seconds": seconds}, FaultSpec)
    return FaultPlan([spec])


def ready(sup: Supervisor) -> None:
    pump_until(sup, lambda: all(c.ref is not None and c.restart_due is None
                                for c in sup.children.values()))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("actor", ACTORS)
def test_fault_in_actor_is_survived_as_the_manual_promises(
    actor: str, kind: str, prepared: Path, tmp_path: Path, loads: list[tuple[str, int]]
) -> None:
    copy_prepared(prepared, tmp_path)
    stepname = STEP_OF.get(actor)
    timeouts = dict(STEP_TIMEOUTS)
    if kind == "hang" and stepname is not None:
        timeouts[stepname] = HANG_TIMEOUT
    cfg = reliability_config(
        tmp_path,
        monitoring={"listen_port": 0},
        supervision={"step_timeouts": timeouts, "watcher_timeout_seconds": 0.5},
    )
    restarted = kind != "slow"
    fails_cycle = stepname is not None and kind in ("raise", "hang", "malformed")
    before = snapshot(tmp_path)
    plan = fault_plan(actor, kind)
    with installed(plan):
        sup = Supervisor(load_config(cfg), default_specs())
        sup.start()
        try:
            child = sup.children[actor]
            if (stepname is None and kind != "slow") or kind == "on_start":
                # A watcher's fault fires on the first tick; on_start at the first start.
                pump_until(sup, lambda: child.generation == 2)
            ready(sup)
            first = sup.run_once()
            after_first = snapshot(tmp_path)
            ready(sup)
            # After a failed cycle the next one must succeed (retry); otherwise the first cycle
            # already ran after the restart and one more proves nothing new.
            second = sup.run_once() if fails_cycle else first
            code, metrics = http_get(f"http://127.0.0.1:{sup.net.bound_port}/metrics")
        finally:
            plan.release.set()
            sup.stop()
    assert first is not None and second is not None
    assert plan.count() == 1, plan.history

    # Restarted as a new generation that reloaded its state from disk, or not restarted at all.
    assert child.generation == (2 if restarted else 1)
    generations = [gen for name, gen in loads if name == actor]
    assert generations == ([1, 2] if restarted and kind != "on_start" else [2] if restarted
                           else [1]), generations

    # The cycle: failed and counted with the step's policy, or unaffected.
    if fails_cycle:
        assert stepname is not None
        assert first.outcome == "failed", first
        expected = "timeout" if kind == "hang" else "crashed"
        assert step(first, stepname).status == expected, step(first, stepname)
        for later in SKIP_ON_FAILURE[stepname]:
            assert step(first, later).status == "skipped"
        assert FAILURE_ALERT_CODES[stepname] in alert_codes(tmp_path / "state", "error")
        check_policy(stepname, before, after_first, first, second)
    else:
        assert first.outcome == "succeeded", first
        if kind == "slow" and stepname is not None:
            assert step(first, stepname).duration_s >= SLOW
    assert second.outcome == "succeeded", second  # the next cycle retries and succeeds

    # Counted everywhere the operator looks.
    want_restarts = {actor: 1} if restarted else {}
    saved = json.loads((tmp_path / "state" / "supervisor.json").read_text())
    assert saved["restarts"] == want_restarts
    assert saved["cycles_failed"] == int(fails_cycle) and saved["consecutive_failures"] == 0
    assert saved["cycles_total"] == 1 + fails_cycle + 1  # the prepared state's cycle included
    status = msgspec.to_builtins(operator.status(load_config(cfg)))
    assert status["restarts"] == want_restarts and status["cycles_failed"] == int(fails_cycle)
    assert code == 200
    samples = metric_samples(metrics.decode())
    restarts_metric = {dict(labels)["actor"]: value for (name, labels), value in samples.items()
                       if name == "aistock_actor_restarts_total"}
    assert restarts_metric == {k: float(v) for k, v in want_restarts.items()}
    assert samples[("aistock_cycles_total", (("outcome", "failed"),))] == int(fails_cycle) \
        if fails_cycle else True
    assert check_state(tmp_path).problems == []


def check_policy(stepname: str, before: Files, after_first: Files,
                 first: CycleSummary, second: CycleSummary) -> None:
    """The manual's failure-recovery table, per failed step."""
    if stepname == "ingest":  # retry next cycle: the missed bar is ingested then
        assert step(second, "ingest").data["bars_added"] > 0
        assert after_first["ledger"] == before["ledger"]  # nothing traded on stale input
    if stepname in ("ingest", "train", "backtest", "judge"):
        # Training failed: previous model stays active. Backtest failed: promotion skipped.
        assert after_first["pointer"] == before["pointer"]
        assert after_first["manifest"] == before["manifest"]
    if stepname == "risk":
        assert after_first["limits"] == before["limits"]
        assert step(first, "trade").status == "ok"  # trading goes on under the last limits
    if stepname == "trade":
        assert after_first["ledger"] == before["ledger"]


def test_restart_intensity_halts_exactly_when_exceeded(prepared: Path, tmp_path: Path) -> None:
    copy_prepared(prepared, tmp_path)
    cfg = reliability_config(
        tmp_path,
        headless={"max_consecutive_failures": 100},
        supervision={"max_restarts": 2, "restart_window_seconds": 120,
                     "step_timeouts": STEP_TIMEOUTS},
    )
    plan = FaultPlan([FaultSpec(actor="data_ingestor", kind="raise", message_type="IngestBars",
                                times=10)])
    with installed(plan):
        sup = Supervisor(load_config(cfg), default_specs())
        sup.start()
        try:
            outcomes = []
            for _ in range(3):
                ready(sup)
                summary = sup.run_once()
                assert summary is not None
                outcomes.append((summary.outcome, sup.halted))
            assert sup.run_once() is None  # refused: halted
        finally:
            sup.stop()
    # 1st and 2nd restart inside the limit (2 in 120 s); the 3rd exceeds it and halts (that
    # cycle failed on its own, so it counts as failed; nothing after it runs).
    assert outcomes == [("failed", False), ("failed", False), ("failed", True)]
    halt = json.loads((tmp_path / "state" / "HALTED").read_text())
    assert halt["kind"] == halt["reason"] == "restart_intensity_exceeded"
    status = operator.status(load_config(cfg))
    assert status.halted and status.restarts == {"data_ingestor": 3}
    assert "restart_intensity_exceeded" in alert_codes(tmp_path / "state", "critical")


def test_consecutive_failure_cap_halts_exactly_at_the_cap(prepared: Path, tmp_path: Path) -> None:
    copy_prepared(prepared, tmp_path)
    cfg = reliability_config(
        tmp_path,
        headless={"max_consecutive_failures": 2},
        supervision={"max_restarts": 100, "step_timeouts": STEP_TIMEOUTS},
    )
    pointer = snapshot(tmp_path)["pointer"]
    # Training fails in cycles 1, 3 and 4; cycle 2 succeeds and resets the count.
    plan = FaultPlan([
        FaultSpec(actor="trainer", kind="raise", message_type="TrainModel"),
        FaultSpec(actor="trainer", kind="raise", message_type="TrainModel", times=2, after=1),
    ])
    with installed(plan):
        sup = Supervisor(load_config(cfg), default_specs())
        sup.start()
        try:
            seen = []
            for _ in range(4):
                ready(sup)
                summary = sup.run_once()
                assert summary is not None
                seen.append((summary.outcome, sup.state.consecutive_failures, sup.halted))
        finally:
            sup.stop()
    assert seen == [("failed", 1, False), ("succeeded", 0, False), ("failed", 1, False),
                    ("failed", 2, True)]
    halt = json.loads((tmp_path / "state" / "HALTED").read_text())
    assert halt["reason"] == "max_failures_reached"
    assert snapshot(tmp_path)["pointer"] == pointer  # every failed training kept the model
    assert operator.status(load_config(cfg)).cycles_failed == 3


KILL_SWITCH_BOUND = 1.0
"""Seconds from ``touch KILL_SWITCH`` to the halt (the poll is 0.05 s)."""


@pytest.mark.parametrize("actor", ACTORS)
def test_kill_switch_halts_while_an_actor_is_hung(
    actor: str, prepared: Path, tmp_path: Path
) -> None:
    copy_prepared(prepared, tmp_path)
    cfg = reliability_config(tmp_path, supervision={"step_timeouts": STEP_TIMEOUTS,
                                                    "watcher_timeout_seconds": 30})
    plan = FaultPlan([FaultSpec(actor=actor, kind="hang", message_type=MESSAGE_OF[actor],
                                seconds=60)])
    state_dir = tmp_path / "state"
    with installed(plan):
        sup = Supervisor(load_config(cfg), default_specs())
        sup.start()
        try:
            ready(sup)
            if actor in STEP_OF:
                sup.begin_cycle()
            pump_until(sup, lambda: plan.count() == 1)  # the actor is now stuck in a handler
            before = snapshot(tmp_path)
            fills = len(json.loads(before["ledger"] or b"{}").get("fills", []))
            (state_dir / "KILL_SWITCH").touch()
            touched = time.monotonic()
            pump_until(sup, lambda: sup.halted, timeout=5)
            took = time.monotonic() - touched
            assert sup.halt is not None and sup.halt.reason == "kill_switch_activated"
            assert sup.cycle is None
            # The hung instance wakes up to a halted system: no order, no promotion after it.
            plan.release.set()
            ref = sup.children[actor].ref
            with pytest.raises(Exception, match="unexpected"):
                ref.ask("drain", timeout=10)  # answered only after the hung message finished
        finally:
            plan.release.set()
            sup.stop()
    assert took <= KILL_SWITCH_BOUND, took
    assert json.loads((state_dir / "HALTED").read_text())["kind"] == "kill_switch"
    after = snapshot(tmp_path)
    assert after["pointer"] == before["pointer"]
    assert len(json.loads(after["ledger"] or b"{}").get("fills", [])) == fills
    assert check_state(tmp_path).problems == []


def test_a_failure_found_by_a_tell_and_then_reported_is_one_restart(
    prepared: Path, tmp_path: Path
) -> None:
    """Regression: an actor that died in ``on_start`` is found dead by the step's tell (restart
    scheduled), then its own ``ActorStartFailed`` report arrives: that used to schedule and count
    a second restart (and feed restart intensity twice) for one failure."""
    copy_prepared(prepared, tmp_path)
    cfg = reliability_config(tmp_path, supervision={"step_timeouts": STEP_TIMEOUTS})
    with installed(FaultPlan([FaultSpec(actor="data_ingestor", kind="on_start")])):
        sup = Supervisor(load_config(cfg), default_specs())
        sup.start()
        try:
            ref = sup.children["data_ingestor"].ref
            wait_until(lambda: not ref.is_alive(), 10, "the failed start")  # nothing pumped yet
            summary = sup.run_once()  # its tell finds the actor dead; then the report arrives
            assert summary is not None and step(summary, "ingest").status == "crashed"
            ready(sup)
            assert sup.run_once() is not None
        finally:
            sup.stop()
    assert sup.state.restarts == {"data_ingestor": 1}
    assert sup.children["data_ingestor"].generation == 2
    assert sup.intensity.recent == 1
