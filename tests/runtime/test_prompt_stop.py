"""Prompt stop and no work after a halt (issue #18).

A real pool job that runs far longer than any bound here (the fault seam's ``slow_job``: the
worker sleeps before the fit, as a long fit would) stands in for a fit at 100 symbols:

- SIGTERM while the Trainer's or the Backtester's job runs ends a real ``--run-once`` process
  within 10 s (the job is cancelled and its worker killed); the state loads and the next start
  runs a normal cycle;
- a kill-switch halt while the Trainer's job runs ends the step at once and stores no model for
  the halted cycle.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from _support.fault_harness import (
    FIRST_BARS,
    SUPERVISOR,
    check_state,
    installed,
    reliability_config,
    write_bars,
)
from _support.support import pump_until
from _support.waiting import wait_until

from aistock_actors.config import load_config
from aistock_actors.runtime import faults
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.faults import FaultPlan, FaultSpec
from aistock_actors.runtime.supervisor import Supervisor
from aistock_actors.store.models import ModelStore

pytestmark = [pytest.mark.timeout(180)]

SLOW_JOB_SECONDS = 120.0
"""How long the injected job sleeps in its worker: past every bound asserted here."""
STOP_WITHIN_SECONDS = 10.0
"""The manual's promise: SIGTERM during any step ends the process within this."""
POOLED = {
    "parallel": {"backend": "loky", "n_jobs": 1},
    # The production shutdown timeout, and step timeouts far past the injected job.
    "supervision": {"shutdown_timeout_seconds": 5.0,
                    "step_timeouts": {"train": 600.0, "backtest": 600.0}},
}


def _slow_plan(tmp: Path, actor: str) -> dict[str, str]:
    plan = tmp / "plan.json"
    spec = FaultSpec(actor=actor, kind="slow_job", seconds=SLOW_JOB_SECONDS)
    plan.write_bytes(msgspec.json.encode([spec]))
    return {faults.ENV_SWITCH: faults.ENV_SWITCH_VALUE, faults.ENV_PLAN: str(plan)}


def _run_once(tmp: Path, config: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, SUPERVISOR, str(config), "--run-once", "--log-format", "text"],
            cwd=tmp, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})


@pytest.mark.parametrize("actor", ["trainer", "backtester"])
def test_sigterm_during_a_long_pool_job_exits_within_10s_and_the_next_start_runs(
    tmp_path: Path, actor: str
) -> None:
    write_bars(tmp_path, FIRST_BARS)
    config = reliability_config(tmp_path, **POOLED)
    log = tmp_path / "first.log"
    proc = _run_once(tmp_path, config, log, _slow_plan(tmp_path, actor))
    try:
        fired = f"fault injection: slow_job {actor}"
        wait_until(lambda: fired in log.read_text(errors="replace") or proc.poll() is not None,
                   timeout=90, what=f"{actor}'s pool job to start")
        assert proc.poll() is None, log.read_text(errors="replace")
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text(errors="replace")
    assert took < STOP_WITHIN_SECONDS, f"SIGTERM took {took:.1f}s\n{text}"
    assert "cancelled (stopping)" in text  # the job was abandoned, not waited for
    report = check_state(tmp_path)
    assert report.problems == [], report.problems
    again = subprocess.run(
        [sys.executable, SUPERVISOR, str(config), "--run-once", "--log-format", "text"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "SUCCEEDED" in again.stdout


def test_a_kill_switch_during_training_stores_no_model_for_that_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_bars(tmp_path, FIRST_BARS)
    sup = Supervisor(load_config(reliability_config(tmp_path, **POOLED)), default_specs())
    plan = FaultPlan([FaultSpec(actor="trainer", kind="slow_job", seconds=SLOW_JOB_SECONDS)])
    caplog.set_level(logging.INFO, logger="aistock_actors.runtime.supervisor")
    with installed(plan):
        sup.start()
        try:
            assert sup.begin_cycle()
            pump_until(sup, lambda: plan.count() == 1, timeout=60)  # the fit is running
            start = time.monotonic()
            (tmp_path / "state" / "KILL_SWITCH").write_text("stop\n")
            pump_until(sup, lambda: sup.cycle is None, timeout=STOP_WITHIN_SECONDS)
            # The Trainer answers (too late for the halted cycle) once its job is cancelled,
            # not after the 120 s fit: then it has nothing left to store.
            pump_until(sup, lambda: _stale_trainer_reply(caplog), timeout=STOP_WITHIN_SECONDS)
            took = time.monotonic() - start
        finally:
            sup.stop()
    summary = sup.last_summary
    assert summary is not None and summary.outcome == "halted", summary
    train = next(step for step in summary.steps if step.name == "train")
    assert train.status == "halted", train
    assert took < STOP_WITHIN_SECONDS
    assert ModelStore(tmp_path / "models").list_models() == []  # nothing trained, nothing stored
    audit = (tmp_path / "state" / "audit" / "log.jsonl").read_text()
    assert '"model_trained"' not in audit


def _stale_trainer_reply(caplog: pytest.LogCaptureFixture) -> bool:
    return any("ignoring stale reply StepFailed from trainer" in r.getMessage()
               for r in caplog.records)


def test_the_service_managers_wait_longer_than_the_stop_promise() -> None:
    repo = Path(__file__).resolve().parents[2]
    unit = (repo / "ops" / "systemd" / "aistock.service").read_text()
    program = (repo / "ops" / "supervisord" / "aistock.conf").read_text()
    systemd = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))  # type: ignore[union-attr]
    supervisord = int(re.search(r"^stopwaitsecs=(\d+)$", program, re.M).group(1))  # type: ignore[union-attr]
    # Headroom over the promise: an actor stuck in its own thread costs shutdown_timeout (5 s).
    assert systemd == supervisord >= 2 * STOP_WITHIN_SECONDS
