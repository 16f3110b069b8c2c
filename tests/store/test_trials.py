"""The persisted trial count behind the deflated Sharpe ratio: it only grows, survives a corrupt
file through its backup, and a lost count is a critical alert, never silent."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.support import alert_codes

from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.trials import TrialStore


def test_the_count_grows_across_instances_and_recovers_from_the_backup(tmp_path: Path) -> None:
    alerts = AlertSink(tmp_path / "alerts")
    store = TrialStore(tmp_path, alerts)
    assert store.count() == 0
    assert store.add(1) == 1
    assert store.add(3) == 4
    assert TrialStore(tmp_path, alerts).count() == 4
    store.path.write_text("{not json")
    assert TrialStore(tmp_path, alerts).count() == 1  # the previous version, from .bak
    assert "state_file_recovered_from_backup" in alert_codes(tmp_path, "error")
    with pytest.raises(ValueError, match=">= 1"):
        store.add(0)


def test_a_lost_count_restarts_with_a_critical_alert(tmp_path: Path) -> None:
    alerts = AlertSink(tmp_path / "alerts")
    store = TrialStore(tmp_path, alerts)
    store.add(2)
    store.path.write_text("garbage")
    store.path.with_name("trials.json.bak").write_text("garbage")
    assert store.count() == 0
    assert "state_file_unrecoverable" in alert_codes(tmp_path, "critical")


def test_a_candidate_backtested_again_after_an_interrupted_cycle_counts_once(
    tmp_path: Path,
) -> None:
    store = TrialStore(tmp_path, None)
    assert store.add(1, candidate="m-c20200101T000000Z-0001") == 1
    assert store.add(1, candidate="m-c20200101T000000Z-0001") == 1  # the same candidate again
    assert store.add(1, candidate="m-c20200102T000000Z-0002") == 2
    assert store.add(1) == 3
