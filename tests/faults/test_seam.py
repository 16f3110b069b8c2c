"""The fault-injection seam: every fault kind works, and nothing enables it by accident."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.support import make_supervisor, probe_class, pump_until, write_config

from aistock_actors.runtime import faults
from aistock_actors.runtime.faults import FaultPlan, FaultSpec


@pytest.fixture()
def plan_slot() -> Iterator[None]:
    yield
    current = faults.active()
    if current is not None:
        current.release.set()
    faults.install(None)


def _run(tmp_path: Path, specs: list[FaultSpec], **cfg: object) -> tuple[list[str], int]:
    plan = FaultPlan(specs)
    faults.install(plan)
    sup = make_supervisor(write_config(tmp_path, **cfg), probe_class([]))
    sup.start()
    try:
        pump_until(sup, lambda: sup.children["probe"].ref is not None)
        first = sup.run_once()
        pump_until(sup, lambda: sup.children["probe"].ref is not None)
        second = sup.run_once()
    finally:
        plan.release.set()
        sup.stop()
    assert first is not None and second is not None
    assert second.outcome == "succeeded"  # the fault fired once; the restarted actor is healthy
    return [first.steps[0].status, first.steps[0].detail], sup.children["probe"].generation


@pytest.mark.usefixtures("plan_slot")
def test_injected_exception_crashes_and_restarts(tmp_path: Path) -> None:
    (status, detail), generation = _run(tmp_path, [FaultSpec(actor="probe", kind="raise",
                                                            message_type="IngestBars")])
    assert status == "crashed" and "injected exception" in detail and generation == 2


@pytest.mark.usefixtures("plan_slot")
def test_injected_hang_times_out(tmp_path: Path) -> None:
    (status, _), generation = _run(
        tmp_path, [FaultSpec(actor="probe", kind="hang", message_type="IngestBars")],
        supervision={"step_timeouts": {"ingest": 0.3}})
    assert status == "timeout" and generation == 2


@pytest.mark.usefixtures("plan_slot")
def test_injected_malformed_message_is_an_explicit_error(tmp_path: Path) -> None:
    (status, detail), _ = _run(tmp_path, [FaultSpec(actor="probe", kind="malformed",
                                                    message_type="IngestBars")])
    assert status == "crashed" and "MalformedMessage" in detail


@pytest.mark.usefixtures("plan_slot")
def test_slow_reply_within_timeout_succeeds(tmp_path: Path) -> None:
    plan = FaultPlan([FaultSpec(actor="probe", kind="slow", seconds=0.2)])
    faults.install(plan)
    sup = make_supervisor(write_config(tmp_path), probe_class([]))
    sup.start()
    try:
        summary = sup.run_once()
    finally:
        sup.stop()
    assert summary is not None and summary.outcome == "succeeded"
    assert summary.steps[0].duration_s >= 0.2 and plan.count() == 1


@pytest.mark.usefixtures("plan_slot")
def test_injected_on_start_failure_restarts(tmp_path: Path) -> None:
    faults.install(FaultPlan([FaultSpec(actor="probe", kind="on_start")]))
    sup = make_supervisor(write_config(tmp_path), probe_class([]))
    sup.start()
    try:
        pump_until(sup, lambda: sup.children["probe"].generation == 2
                   and sup.children["probe"].ref is not None)
        summary = sup.run_once()
        assert summary is not None and summary.outcome == "succeeded"
    finally:
        sup.stop()


@pytest.mark.parametrize("switch", ["1", "true", "", None])
def test_environment_without_the_exact_switch_leaves_injection_off(
        tmp_path: Path, switch: str | None) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"actor": "data_ingestor", "kind": "raise"}]))
    env = {"AISTOCK_FAULT_PLAN": str(plan), "PATH": "/usr/bin:/bin"}
    if switch is not None:
        env["AISTOCK_FAULT_INJECTION"] = switch
    code = "from aistock_actors.runtime import faults; print(faults.active() is None)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "True"


def test_exact_switch_and_plan_enable_injection(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"actor": "data_ingestor", "kind": "raise"}]))
    env = {"AISTOCK_FAULT_PLAN": str(plan), "PATH": "/usr/bin:/bin",
           "AISTOCK_FAULT_INJECTION": faults.ENV_SWITCH_VALUE}
    code = "from aistock_actors.runtime import faults; p = faults.active(); print(len(p.specs))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "1"


def test_config_cannot_mention_fault_injection(tmp_path: Path) -> None:
    from aistock_actors.config import parse_config
    from aistock_actors.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(json.dumps({"faults": [{"actor": "x", "kind": "raise"}]}))


def test_after_lets_matching_messages_through_before_firing_and_history_records() -> None:
    from aistock_actors.messages.data import IngestBars

    plan = FaultPlan([FaultSpec(actor="a", kind="slow", seconds=0.0, times=2, after=2,
                                message_type="IngestBars"),
                      FaultSpec(actor="a", kind="on_start", after=1)])
    outcomes = []
    for _ in range(6):
        before = plan.count()
        plan.before_message("a", IngestBars(request_id="r"))
        plan.before_message("b", IngestBars(request_id="r"))  # another actor: never matches
        outcomes.append(plan.count() - before)
    assert outcomes == [0, 0, 1, 1, 0, 0]  # 2 let through, then fired twice, then exhausted
    plan.before_start("a")  # the first start passes (after=1) ...
    with pytest.raises(faults.InjectedFault):
        plan.before_start("a")  # ... the second fails
    plan.before_start("a")
    assert plan.history == [("a", "slow", "IngestBars")] * 2 + [("a", "on_start", "on_start")]
