"""Helpers of the operations tests: a supervisor with the real watchers, fast retry settings."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from _support.support import Probe
from aistock_actors.actors.base import SupervisedActor
from aistock_actors.actors.health_reporter import HealthReporter
from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.config import load_config
from aistock_actors.messages.data import IngestBars
from aistock_actors.runtime.supervisor import ChildSpec, Supervisor

FAST_MONITORING: dict[str, Any] = {
    "http_timeout_seconds": 0.5,
    "retry_max_attempts": 3,
    "retry_max_seconds": 1.0,
    "retry_backoff_base_seconds": 0.05,
    "retry_backoff_max_seconds": 0.2,
}
"""Retry settings that keep every network test well inside its time budget."""


def ops_supervisor(
    config_path: Path,
    probe: type[Probe] | None = None,
    watchers: tuple[type[SupervisedActor], ...] = (KillSwitchWatcher, HealthReporter),
) -> Supervisor:
    """A supervisor with the given watcher children and, optionally, a probe doing ``ingest``."""
    specs = [ChildSpec(name=cls.child_name, actor_class=cls) for cls in watchers]
    if probe is not None:
        specs.append(
            ChildSpec(
                name="probe",
                actor_class=probe,
                step="ingest",
                make_request=lambda rid, _cycle: IngestBars(request_id=rid),
            )
        )
    return Supervisor(load_config(config_path), specs)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET with the standard library (status, body); HTTP errors are answers, not raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.read()


def alerts_of(state_dir: Path, severity: str, code: str) -> list[dict[str, Any]]:
    """Alert files of one severity and code, oldest first."""
    folder = state_dir / "alerts" / severity
    out = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return [a for a in out if a["code"] == code]


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, keyed by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def compare_metrics_with_status(text: str, status: dict[str, object]) -> None:
    """The acceptance check: /metrics says what ``--status --json`` says."""
    samples = metric_samples(text)
    cycles = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "aistock_cycles_total"
    }
    assert samples[("aistock_consecutive_failures", ())] == status["consecutive_failures"]
    assert samples[("aistock_halted", ())] == float(bool(status["halted"]))
    assert samples[("aistock_kill_switch_active", ())] == float(bool(status["kill_switch"]))
    assert sum(cycles.values()) == status["cycles_total"]
    assert cycles.get("succeeded", 0) == status["cycles_succeeded"]
    assert cycles.get("failed", 0) == status["cycles_failed"]
