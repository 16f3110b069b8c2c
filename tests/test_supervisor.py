"""Supervisor semantics with real pykka actors and real files: restarts, failures, halts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import (
    alert_codes,
    audit_actions,
    make_supervisor,
    probe_class,
    pump_until,
    write_config,
)

from aistock_actors import operator
from aistock_actors.config import load_config
from aistock_actors.store.state import read_halt


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
