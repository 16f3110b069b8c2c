"""Faults in each lifecycle actor: an exception mid-step and a hang past the step timeout.

Every case runs a real cycle (inline backend, so a monkeypatched core function is what the actor
calls) on a state whose active model was promoted earlier, and checks: the step is ``crashed`` or
``timeout``, the actor is replaced by a new generation, the failed cycle is counted, the active
model is untouched byte for byte, and every JSON file under ``state/`` and ``models/`` loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from _support.lifecycle_support import (
    add_bars,
    assert_all_json_loads,
    audit_records,
    lifecycle_config,
    pointer,
    run_cycle,
    step,
    write_planted,
)
from _support.support import RELEASE_HANGS, pump_until

from aistock_actors.actors import promotion_judge
from aistock_actors.config import load_config
from aistock_actors.core.model import pipeline
from aistock_actors.runtime.child_specs import default_specs
from aistock_actors.runtime.supervisor import Supervisor

STEP_OF = {"trainer": "train", "backtester": "backtest", "promotion_judge": "judge"}
SEAM = {  # where each actor's work is replaced: the core function it calls
    "trainer": (pipeline, "train_candidate"),
    "backtester": (pipeline, "walk_forward_backtest"),
    "promotion_judge": (promotion_judge, "evaluate_candidate"),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("active")
    write_planted(tmp)
    summary, _ = run_cycle(lifecycle_config(tmp))
    assert step(summary, "judge").data["status"] == "approved"
    return tmp


def crash(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("injected fault mid-step")


def hang(*_args: Any, **_kwargs: Any) -> Any:
    RELEASE_HANGS.wait(60)
    raise RuntimeError("released after the test")


@pytest.mark.parametrize("fault", ["exception", "hang"])
@pytest.mark.parametrize("actor", ["trainer", "backtester", "promotion_judge"])
def test_fault_restarts_actor_counts_failure_and_keeps_active_model(
    actor: str, fault: str, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("data", "state", "models"):
        shutil.copytree(template / name, tmp_path / name)
    shutil.copy2(template / "integrity.key", tmp_path / "integrity.key")  # signs the models
    add_bars(tmp_path)  # a new bar: this cycle trains, backtests and judges
    stepname = STEP_OF[actor]
    config = lifecycle_config(tmp_path, step_timeouts={stepname: 1.5} if fault == "hang" else {})
    before = pointer(tmp_path)
    assert before is not None
    module, attr = SEAM[actor]
    monkeypatch.setattr(module, attr, crash if fault == "exception" else hang)

    sup = Supervisor(load_config(config), default_specs())
    sup.start()
    try:
        summary = sup.run_once()
        assert summary is not None and summary.outcome == "failed"
        record = step(summary, stepname)
        assert record.status == ("crashed" if fault == "exception" else "timeout"), record
        child = sup.children[actor]
        pump_until(sup, lambda: child.generation == 2 and child.ref is not None)
        assert sup.state.consecutive_failures == 1
    finally:
        sup.stop()

    assert pointer(tmp_path) == before
    assert_all_json_loads(tmp_path)
    saved = json.loads((tmp_path / "state" / "supervisor.json").read_text())
    assert saved["cycles_failed"] == 1 and saved["restarts"] == {actor: 1}
    actions = [r["action"] for r in audit_records(tmp_path)]
    assert actions.count("autopilot_failed") == 1 and "actor_restarted" in actions
    assert actions.count("model_promoted") == 1  # the template's promotion, nothing since
