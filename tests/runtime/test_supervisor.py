"""Supervisor semantics with real pykka actors and real files: restarts, failures, halts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from _support.support import (
    alert_codes,
    audit_actions,
    make_supervisor,
    probe_class,
    pump_until,
    write_config,
)
from _support.waiting import wait_until

from aistock_actors.config import load_config
from aistock_actors.runtime.supervisor import Supervisor
from aistock_actors.services import operator_actions as operator
from aistock_actors.store.state import load_supervisor_state, read_halt


def test_crash_in_tell_restarts_new_instance_that_reloads_state(tmp_path: Path) -> None:
    probe = probe_class(["crash", "ok"])
    sup = make_supervisor(write_config(tmp_path), probe)
    sup.start()
    try:
        first = sup.run_once()
        assert first is not None and first.outcome == "failed"
        assert first.steps[0].status == "crashed"
        assert "probe crashed on purpose" in first.steps[0].detail
        pump_until(sup, lambda: sup.children["probe"].generation == 2
                   and sup.children["probe"].ref is not None)
        second = sup.run_once()
        assert second is not None and second.outcome == "succeeded"
    finally:
        sup.stop()
    # Generation 2 reloaded the count that generation 1 wrote to disk before crashing.
    assert probe.loads[:2] == [(1, 0), (2, 1)]
    state_dir = tmp_path / "state"
    saved = json.loads((state_dir / "supervisor.json").read_text())
    assert saved["restarts"] == {"probe": 1}
    assert saved["consecutive_failures"] == 0
    actions = audit_actions(state_dir)
    assert actions.index("actor_crashed") < actions.index("actor_restarted")
    assert "actor_crashed" in alert_codes(state_dir, "error")


def test_failure_in_on_start_is_reported_and_restarted(tmp_path: Path) -> None:
    probe = probe_class(["ok"], fail_on_start={1})
    sup = make_supervisor(write_config(tmp_path), probe)
    sup.start()
    try:
        pump_until(sup, lambda: sup.children["probe"].generation == 2)
        pump_until(sup, lambda: sup.children["probe"].ref is not None)
        summary = sup.run_once()
        assert summary is not None and summary.outcome == "succeeded"
    finally:
        sup.stop()
    assert [gen for gen, _ in probe.loads[:2]] == [1, 2]
    errors = [json.loads(p.read_text()) for p in (tmp_path / "state/alerts/error").glob("*.json")]
    assert any("on_start failed" in e["message"] and "cannot load state" in e["message"]
               for e in errors)


def test_consecutive_failures_halt_with_alert_and_audit(tmp_path: Path) -> None:
    probe = probe_class(["fail"] * 5)
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 3})
    sup = make_supervisor(cfg, probe)
    sup.start()
    try:
        outcomes = [sup.run_once() for _ in range(3)]
        assert [o.outcome for o in outcomes if o] == ["failed", "failed", "failed"]
        assert sup.halted
        assert sup.run_once() is None  # refused while halted
    finally:
        sup.stop()
    state_dir = tmp_path / "state"
    halt = read_halt(state_dir)
    assert halt is not None and halt.reason == "max_failures_reached"
    assert "halted_automation" in halt.message
    assert "max_failures_reached" in alert_codes(state_dir, "critical")
    actions = audit_actions(state_dir)
    assert actions.count("autopilot_failed") == 3
    assert "max_failures_reached" in actions
    assert probe.halts == ["max_failures_reached"]


def test_successful_cycle_resets_the_failure_count(tmp_path: Path) -> None:
    probe = probe_class(["fail", "fail", "ok", "fail"])
    sup = make_supervisor(write_config(tmp_path), probe)
    sup.start()
    try:
        counts = []
        for _ in range(4):
            sup.run_once()
            counts.append(sup.state.consecutive_failures)
    finally:
        sup.stop()
    assert counts == [1, 2, 0, 1]
    assert not sup.halted


def test_auto_recovery_disabled_halts_on_first_failure(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, headless={"enable_auto_recovery": False})
    sup = make_supervisor(cfg, probe_class(["fail"]))
    sup.start()
    try:
        sup.run_once()
        assert sup.halted
    finally:
        sup.stop()
    halt = read_halt(tmp_path / "state")
    assert halt is not None and halt.kind == "max_failures_reached"


def test_restart_intensity_escalates_to_halt(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 50},
                       supervision={"max_restarts": 2, "restart_window_seconds": 60})
    sup = make_supervisor(cfg, probe_class(["crash"] * 10))
    sup.start()
    try:
        for expected_gen in (1, 2, 3):
            pump_until(sup, lambda g=expected_gen: sup.children["probe"].generation == g
                       and sup.children["probe"].ref is not None)
            assert not sup.halted
            sup.run_once()
        assert sup.halted
    finally:
        sup.stop()
    halt = read_halt(tmp_path / "state")
    assert halt is not None and halt.reason == "restart_intensity_exceeded"
    assert "restart_intensity_exceeded" in audit_actions(tmp_path / "state")


def test_hung_step_times_out_counts_as_failure_and_stale_reply_is_ignored(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, supervision={"step_timeouts": {"ingest": 0.3}})
    probe = probe_class(["hang", "ok", "ok"])
    sup = make_supervisor(cfg, probe)
    sup.start()
    try:
        first = sup.run_once()
        assert first is not None and first.steps[0].status == "timeout"
        assert sup.state.consecutive_failures == 1
        pump_until(sup, lambda: sup.children["probe"].generation == 2
                   and sup.children["probe"].ref is not None)
        probe.release.set()  # the abandoned generation-1 instance now replies: stale
        second = sup.run_once()
        assert second is not None and second.outcome == "succeeded"
        assert sup.state.consecutive_failures == 0
    finally:
        sup.stop()
    assert "data_ingestion_failed" in alert_codes(tmp_path / "state", "error")


def test_halt_survives_process_restart_until_resume(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 1})
    sup = make_supervisor(cfg, probe_class(["fail"]))
    sup.start()
    sup.run_once()
    sup.stop()
    assert sup.halted

    again = make_supervisor(cfg, probe_class(["ok"]))
    again.start()
    try:
        assert again.halted
        assert again.run_once() is None
    finally:
        again.stop()

    message, ok = operator.resume(load_config(cfg))
    assert ok and "max_failures_reached" in message
    assert "operator_resumed" in audit_actions(tmp_path / "state")

    third = make_supervisor(cfg, probe_class(["ok"]))
    third.start()
    try:
        assert not third.halted and third.state.consecutive_failures == 0
        summary = third.run_once()
        assert summary is not None and summary.outcome == "succeeded"
    finally:
        third.stop()


def test_kill_switch_file_halts_a_running_cycle(tmp_path: Path) -> None:
    probe = probe_class(["hang"])
    sup = make_supervisor(write_config(tmp_path), probe)
    sup.start()
    try:
        assert sup.begin_cycle()
        (tmp_path / "state" / "KILL_SWITCH").touch()
        pump_until(sup, lambda: sup.halted and sup.cycle is None, timeout=5)
        assert sup.last_summary is not None and sup.last_summary.outcome == "halted"
        # The Halt *message* waits behind the hung handler; the shared flag is already set.
        assert sup.halt_flag.is_set() and probe.halts == []
        probe.release.set()
        pump_until(sup, lambda: probe.halts == ["kill_switch_activated"])
    finally:
        sup.stop()
    state_dir = tmp_path / "state"
    assert audit_actions(state_dir).count("kill_switch_activated") == 1
    assert "kill_switch_activated" in alert_codes(state_dir, "critical")
    halt = read_halt(state_dir)
    assert halt is not None and halt.kind == "kill_switch"


def test_operator_resume_is_refused_while_kill_switch_is_set(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    loaded = load_config(cfg)
    operator.kill(loaded)
    sup = make_supervisor(cfg, probe_class(["ok"]))
    sup.start()
    sup.stop()
    message, ok = operator.resume(loaded)
    assert not ok and "--unkill" in message
    message, still = operator.unkill(loaded)
    assert not still and read_halt(tmp_path / "state") is None
    actions = audit_actions(tmp_path / "state")
    assert actions.index("kill_switch_set_by_operator") < actions.index("kill_switch_activated")
    assert actions[-1] == "kill_switch_deactivated"


def test_config_above_hard_ceiling_runs_clamped_and_is_audited(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, risk={"max_position_fraction": 0.9})
    loaded = load_config(cfg)
    assert loaded.config.risk.max_position_fraction == pytest.approx(0.30)
    sup = make_supervisor(cfg, probe_class(["ok"]))
    sup.start()
    sup.stop()
    lines = (tmp_path / "state/audit/log.jsonl").read_text().splitlines()
    clamp = [json.loads(line) for line in lines if '"risk_ceiling_clamped"' in line]
    assert clamp and clamp[0]["details"] == {
        "key": "risk.max_position_fraction", "requested": 0.9, "applied": 0.3}


SLOW_BACKOFF = {"restart_backoff_base_seconds": 0.8, "restart_backoff_max_seconds": 0.8}
"""A restart backoff longer than the gap between the cycles a test runs back to back."""


def _restarting(sup: Supervisor) -> bool:
    child = sup.children["probe"]
    return child.ref is None and child.restart_due is not None


def test_one_crash_counts_once_while_the_child_is_still_in_backoff(tmp_path: Path) -> None:
    """Regression: a cycle run while the crashed child was still in its backoff failed its step
    as "unavailable" and counted a second consecutive failure for the same crash, so with a cap
    of 2 one crash halted the system."""
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 2},
                       supervision=SLOW_BACKOFF)
    sup = make_supervisor(cfg, probe_class(["crash", "ok"]))
    sup.start()
    try:
        first = sup.run_once()
        assert first is not None and first.outcome == "failed"
        assert sup.state.consecutive_failures == 1
        assert _restarting(sup)
        second = sup.run_once()  # the daemon's next tick, inside the backoff
        assert second is not None and second.outcome == "degraded" and _restarting(sup)
        ingest = second.steps[0]
        assert (ingest.status, ingest.data.get("reason")) == ("skipped", "child_restarting")
        assert ingest.detail.startswith("child_restarting")
        assert sup.state.consecutive_failures == 1  # held: neither a new failure nor a reset
        assert not sup.halted
        pump_until(sup, lambda: sup.children["probe"].ref is not None)
        third = sup.run_once()
        assert third is not None and third.outcome == "succeeded"
        assert sup.state.consecutive_failures == 0
    finally:
        sup.stop()
    state_dir = tmp_path / "state"
    actions = audit_actions(state_dir)
    assert actions.count("autopilot_failed") == 1
    assert actions.count("step_skipped_child_restarting") == actions.count("cycle_degraded") == 1
    assert alert_codes(state_dir, "error").count("data_ingestion_failed") == 1
    assert read_halt(state_dir) is None
    saved = load_supervisor_state(state_dir, None)
    assert (saved.cycles_total, saved.cycles_succeeded, saved.cycles_failed,
            saved.cycles_degraded) == (3, 1, 1, 1)
    shown = operator.render_status(operator.status(load_config(cfg)))
    assert "3 total, 1 ok, 1 failed, 1 degraded;" in shown


def test_a_crash_outside_any_step_is_counted_once_by_the_next_cycle(tmp_path: Path) -> None:
    """A child that fails (here in ``on_start``) while no step of it runs has a fault no cycle
    counted yet: the first cycle that finds it restarting counts it, a second one does not."""
    cfg = write_config(tmp_path, supervision=SLOW_BACKOFF)
    sup = make_supervisor(cfg, probe_class(["ok"], fail_on_start={1}))
    sup.start()
    try:
        pump_until(sup, lambda: _restarting(sup))
        first = sup.run_once()
        assert first is not None and first.outcome == "failed"
        assert first.steps[0].status == "failed" and "child_restarting" in first.steps[0].detail
        second = sup.run_once()
        assert second is not None and second.outcome == "degraded"
        assert second.steps[0].status == "skipped"
        assert sup.state.consecutive_failures == 1
        pump_until(sup, lambda: sup.children["probe"].ref is not None)
        third = sup.run_once()
        assert third is not None and third.outcome == "succeeded"
    finally:
        sup.stop()
    assert sup.state.consecutive_failures == 0


def test_an_actor_crashing_on_every_request_still_reaches_the_cap(tmp_path: Path) -> None:
    """Cycles inside a backoff hold the count, but every new crash of the restarted child is a
    new fault: the cap still halts an actor that never recovers (restart intensity off)."""
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 3},
                       supervision={"restart_backoff_base_seconds": 0.2,
                                    "restart_backoff_max_seconds": 0.2, "max_restarts": 1000})
    sup = make_supervisor(cfg, probe_class(["crash"] * 20))
    sup.start()
    try:
        counts = []
        while not sup.halted:
            summary = sup.run_once()
            assert summary is not None
            counts.append((summary.steps[0].status, sup.state.consecutive_failures))
            assert len(counts) < 200, counts
            sup.pump(0.05)  # a daemon interval shorter than the backoff
    finally:
        sup.stop()
    crashes = [count for status, count in counts if status == "crashed"]
    assert crashes == [1, 2, 3]
    assert all(count in (1, 2) for status, count in counts if status == "skipped")
    halt = read_halt(tmp_path / "state")
    assert halt is not None and halt.reason == "max_failures_reached"


def test_an_actor_that_never_comes_back_still_reaches_the_cap(tmp_path: Path) -> None:
    """After a crash in its step the child fails every ``on_start``: each failed start is a new
    fault, counted by the next cycle that finds the child restarting."""
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 3},
                       supervision={"restart_backoff_base_seconds": 0.1,
                                    "restart_backoff_max_seconds": 0.1, "max_restarts": 1000})
    sup = make_supervisor(cfg, probe_class(["crash"], fail_on_start=set(range(2, 100))))
    sup.start()
    try:
        first = sup.run_once()
        assert first is not None and first.steps[0].status == "crashed"
        while not sup.halted:
            generation = sup.children["probe"].generation
            # Let the next start fail and be reported (a new fault), then run a cycle.
            pump_until(sup, lambda g=generation: sup.children["probe"].generation > g
                       and _restarting(sup))
            sup.run_once()
            assert sup.state.cycles_total < 10
    finally:
        sup.stop()
    assert sup.state.consecutive_failures == 3
    halt = read_halt(tmp_path / "state")
    assert halt is not None and halt.reason == "max_failures_reached"


def test_daemon_faster_than_the_backoff_counts_one_crash_once(tmp_path: Path) -> None:
    """The reported case, through ``run_daemon``: cycles every 0.05 s, a 0.8 s backoff, a cap
    of 2. One crash fails one cycle; the cycles during the backoff are audited as skipped; the
    child comes back and the daemon runs on, never halted."""
    cfg = write_config(tmp_path, headless={"max_consecutive_failures": 2},
                       supervision=SLOW_BACKOFF)
    sup = make_supervisor(cfg, probe_class(["crash"]))
    sup.start()
    daemon = threading.Thread(target=sup.run_daemon, args=(0.05,), daemon=True)
    try:
        daemon.start()
        wait_until(lambda: sup.state.cycles_succeeded >= 1 or sup.halted, 20,
                   "the daemon's first cycle")
    finally:
        sup.stop_event.set()
        daemon.join(10)
        sup.stop()
    assert not sup.halted, sup.halt
    st = sup.state
    assert st.cycles_failed == 1 and st.consecutive_failures == 0
    degraded = st.cycles_total - st.cycles_failed - st.cycles_succeeded
    assert degraded >= 1  # at least one tick fell inside the backoff
    actions = audit_actions(tmp_path / "state")
    assert actions.count("autopilot_failed") == 1
    assert actions.count("step_skipped_child_restarting") == degraded
