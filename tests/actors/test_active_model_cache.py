"""The PaperTrader keeps its active model between cycles, and still refuses a swapped artifact."""

from __future__ import annotations

import os
from pathlib import Path

from _support.paper_support import Rig, step_data
from _support.support import alert_codes


def test_an_artifact_swapped_between_two_cycles_of_one_trader_is_refused(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sup = rig.supervisor()
    try:
        first = step_data(rig.cycle(sup), "trade")
        assert first["step_status"] == "ok" and first["status"] == "traded"
        artifact = tmp_path / "models" / "m-test" / "model.joblib"
        planted = artifact.with_name("planted")
        planted.write_bytes(artifact.read_bytes() + b"tampered")
        os.replace(planted, artifact)  # the trader holds the verified model in memory
        rig.grow(201)
        trade = step_data(rig.cycle(sup), "trade")
    finally:
        sup.stop()
    assert trade["step_status"] == "failed" and "model_integrity" in trade["detail"]
    assert "active_model_integrity_failed" in alert_codes(rig.state_dir, "critical")
    state = rig.ledger()
    assert state.fills and state.open_orders == []  # last cycle's orders filled; nothing new


def test_one_trader_trades_the_same_model_over_cycles_without_a_change(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    sup = rig.supervisor()
    try:
        statuses = []
        for n in (200, 201, 202):
            rig.grow(n)
            trade = step_data(rig.cycle(sup), "trade")
            statuses.append((trade["step_status"], trade["model_id"]))
    finally:
        sup.stop()
    assert statuses == [("ok", "m-test")] * 3
