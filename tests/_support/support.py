"""Test support: a scripted probe actor and helpers to build a supervisor on a temp state dir."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.config import LoadedConfig, load_config
from aistock_actors.messages import Reply, Request
from aistock_actors.messages.control import Halt
from aistock_actors.messages.data import BarsIngested, IngestBars
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor

RELEASE_HANGS = threading.Event()
"""Set at every test's teardown so actors a test made hang can finish and stop."""


def write_config(tmp: Path, **sections: Any) -> Path:
    """Write a config whose paths all live under ``tmp``; sections override the defaults."""
    config: dict[str, Any] = {
        "state_dir": str(tmp / "state"),
        "models_dir": str(tmp / "models"),
        "data": {"csv_dir": str(tmp / "data")},
        "supervision": {
            "restart_backoff_base_seconds": 0.01,
            "restart_backoff_max_seconds": 0.05,
            "kill_switch_poll_seconds": 0.05,
            "shutdown_timeout_seconds": 2,
            "step_timeouts": {"ingest": 5},
        },
        # Tests show a few bars at a time: a candidate per new bar, as before the cadence.
        "training": {"retrain_every_bars": 1},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            merged = dict(config[key])
            for k, v in value.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            config[key] = merged
        else:
            config[key] = value
    path = tmp / "config.json"
    path.write_text(json.dumps(config))
    return path


class Probe(SupervisedActor):
    """Performs the ingest step following a script: ok, fail, crash or hang.

    Its state (how many requests it handled) lives in ``state/probe.json`` and is reloaded by
    every new instance, so tests can see that a restart reloads from disk.
    """

    child_name = "probe"
    script: ClassVar[Iterator[str]] = iter(())
    fail_on_start_generations: ClassVar[set[int]] = set()
    loads: ClassVar[list[tuple[int, int]]] = []
    halts: ClassVar[list[str]] = []
    release: ClassVar[threading.Event] = RELEASE_HANGS

    @property
    def _path(self) -> Path:
        return self.ctx.config.state_dir / "probe.json"

    def load_state(self) -> None:
        self.count = json.loads(self._path.read_text())["count"] if self._path.exists() else 0
        type(self).loads.append((self.ctx.generation, self.count))
        if self.ctx.generation in self.fail_on_start_generations:
            raise RuntimeError(f"cannot load state (gen {self.ctx.generation})")

    def handle(self, request: Request) -> Reply:
        assert isinstance(request, IngestBars)
        mode = next(type(self).script, "ok")
        self.count += 1
        self._path.write_text(json.dumps({"count": self.count}))
        if mode == "crash":
            raise RuntimeError("probe crashed on purpose")
        if mode == "hang":
            type(self).release.wait(60)
        if mode == "fail":
            return self.fail(request, "probe_failed", "scripted failure")
        return BarsIngested(request_id=request.request_id, bars_added=1, symbols_ingested=1,
                            symbols_rejected=[], total_bars=self.count)

    def on_halt(self, message: Halt) -> None:
        type(self).halts.append(message.reason)


def probe_class(script: list[str], fail_on_start: set[int] | None = None) -> type[Probe]:
    """A fresh Probe subclass with its own script and records."""
    return type("ScriptedProbe", (Probe,), {
        "script": iter(script), "fail_on_start_generations": set(fail_on_start or ()),
        "loads": [], "halts": [],
    })


def make_supervisor(config_path: Path, probe: type[Probe]) -> Supervisor:
    """A supervisor with one child: the probe performing the ingest step."""
    loaded: LoadedConfig = load_config(config_path)
    spec = ChildSpec(name="probe", actor_class=probe, step="ingest",
                     make_request=lambda rid, _cycle: IngestBars(request_id=rid))
    return Supervisor(loaded, [spec])


def pump_until(sup: Supervisor, condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Drive the supervisor's event loop until ``condition`` holds (bounded in time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        sup.pump(0.02)


def audit_actions(state_dir: Path) -> list[str]:
    """Actions in the audit log, in order."""
    path = state_dir / "audit" / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["action"] for line in path.read_text().splitlines() if line]


def alert_codes(state_dir: Path, severity: str) -> list[str]:
    """Codes of the alert files of one severity."""
    folder = state_dir / "alerts" / severity
    return [json.loads(p.read_text())["code"] for p in sorted(folder.glob("*.json"))]
