"""Fault tests of the operations watchers: a crash or a hang in a handler restarts the actor
(a new generation), and the file kill switch keeps working meanwhile through the supervisor's
own check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _support.support import (
    RELEASE_HANGS,
    alert_codes,
    audit_actions,
    probe_class,
    pump_until,
    write_config,
)

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.actors.health_reporter import HealthReporter
from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.config import load_config
from aistock_actors.messages.data import IngestBars
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor


class _Faults:
    """Mixin: the first ticks follow a script (``crash``, ``hang``), later ones run normally."""

    script: ClassVar[Iterator[str]] = iter(())
    hanging: ClassVar[threading.Event] = threading.Event()

    def fault(self) -> None:
        match next(type(self).script, "ok"):
            case "crash":
                raise RuntimeError("watcher crashed on purpose")
            case "hang":
                type(self).hanging.set()
                RELEASE_HANGS.wait(60)


class FaultyWatcher(_Faults, KillSwitchWatcher):
    def check(self) -> None:
        self.fault()
        super().check()


class FaultyReporter(_Faults, HealthReporter):
    def tick(self) -> None:
        self.fault()
        super().tick()


def scripted(base: type[SupervisedActor], script: list[str]) -> type[Any]:
    return type(base.__name__, (base,), {"script": iter(script), "hanging": threading.Event()})


def supervisor(tmp_path: Path, watcher: type[SupervisedActor], **supervision: Any) -> Supervisor:
    cfg = write_config(tmp_path, supervision={"watcher_timeout_seconds": 0.5, **supervision})
    probe = probe_class(["ok"] * 20)
    return Supervisor(load_config(cfg), [
        ChildSpec(name=watcher.child_name, actor_class=watcher),
        ChildSpec(name="probe", actor_class=probe, step="ingest",
                  make_request=lambda rid, _c: IngestBars(request_id=rid)),
    ])


def restarted(sup: Supervisor, name: str, generation: int = 2) -> bool:
    child = sup.children[name]
    return child.generation >= generation and child.ref is not None and child.ref.is_alive()


@pytest.mark.parametrize("base", [FaultyWatcher, FaultyReporter], ids=["watcher", "reporter"])
def test_an_exception_in_a_handler_restarts_a_new_generation(
    tmp_path: Path, base: type[SupervisedActor]
) -> None:
    actor = scripted(base, ["crash"])
    sup = supervisor(tmp_path, actor)
    name = actor.child_name
    sup.start()
    try:
        pump_until(sup, lambda: restarted(sup, name), timeout=5)
        summary = sup.run_once()
        assert summary is not None and summary.outcome == "succeeded"
        (sup.state_dir / "KILL_SWITCH").touch()
        pump_until(sup, lambda: sup.halt is not None, timeout=5)
        assert sup.children[name].generation == 2  # gen 2 runs the ticks without crashing
    finally:
        sup.stop()
    state_dir = tmp_path / "state"
    actions = audit_actions(state_dir)
    assert actions.index("actor_crashed") < actions.index("actor_restarted")
    assert "actor_crashed" in alert_codes(state_dir, "error")
    assert sup.state.restarts == {name: 1}


@pytest.mark.parametrize("base", [FaultyWatcher, FaultyReporter], ids=["watcher", "reporter"])
def test_a_hang_restarts_a_new_generation_and_the_kill_switch_works_meanwhile(
    tmp_path: Path, base: type[SupervisedActor]
) -> None:
    actor = scripted(base, ["hang"])
    sup = supervisor(tmp_path, actor)
    name = actor.child_name
    sup.start()
    try:
        pump_until(sup, actor.hanging.is_set, timeout=5)
        hung_at = time.monotonic()
        summary = sup.run_once()  # cycles go on while a watcher hangs
        assert summary is not None and summary.outcome == "succeeded"
        (sup.state_dir / "KILL_SWITCH").touch()
        pump_until(sup, lambda: sup.halt is not None, timeout=2)
        assert sup.children[name].generation == 1  # halted by the supervisor's own file check
        pump_until(sup, lambda: restarted(sup, name), timeout=5)
        assert time.monotonic() - hung_at >= 0.4  # the watchdog waited for its timeout
    finally:
        sup.stop()
    state_dir = tmp_path / "state"
    assert audit_actions(state_dir).count("kill_switch_activated") == 1
    crashed = [a for a in audit_actions(state_dir) if a == "actor_crashed"]
    assert len(crashed) == 1
    errors = (state_dir / "alerts" / "error").glob("*actor_crashed*")
    assert any("hung: busy on one message" in p.read_text() for p in errors)
