"""Alert files stay bounded: each severity keeps its newest files (store/alerts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aistock_actors.runtime.clock import FakeClock
from aistock_actors.store import alerts
from aistock_actors.store.alerts import AlertSink, list_alerts


def test_each_severity_keeps_its_newest_alert_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts, "ALERTS_KEPT", {"info": 5, "warning": 5, "error": 50,
                                                "critical": 50})
    monkeypatch.setattr(alerts, "PRUNE_EVERY", 4)
    clock = FakeClock()
    sink = AlertSink(tmp_path, clock=clock)
    sink.raise_alert("critical", "kept", "every critical alert stays (under its limit)")
    names = []
    for i in range(40):
        clock.advance(60)  # a cycle a minute
        names.append(sink.raise_alert("info", f"cycle_{i}", "one per cycle").name)
    info = [p.name for p in list_alerts(tmp_path, "info")]
    assert 5 <= len(info) <= 5 + 4  # pruned every 4 alerts down to the newest 5
    assert info == names[-len(info):]  # the newest survive, oldest first
    assert len(list_alerts(tmp_path, "critical")) == 1
    assert sink.prune() == len(info) - 5 and len(list_alerts(tmp_path, "info")) == 5
