"""The retraining cadence through real cycles: train, backtest and judge run only when
``training.retrain_every_bars`` new bars arrived since the newest candidate; other cycles say
why and store no artifact, manifest entry or alert."""

from __future__ import annotations

from pathlib import Path

from _support.fault_harness import reliability_config, write_bars
from _support.lifecycle_support import manifest, run_cycle, step

from aistock_actors.core.supervision.cadence import CADENCE_NOT_REACHED, NO_NEW_BAR


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_cycles_train_on_the_cadence_and_otherwise_say_why(tmp_path: Path) -> None:
    write_bars(tmp_path, 300)
    config = reliability_config(tmp_path, training={"retrain_every_bars": 3})
    first, _ = run_cycle(config)
    trained = step(first, "train")
    assert trained.status == "ok" and trained.data["model_id"], trained
    models, alerts = _files(tmp_path / "models"), _files(tmp_path / "state" / "alerts")
    assert len(manifest(tmp_path)) == 1

    same, _ = run_cycle(config)  # unchanged data: nothing to train
    for name in ("train", "backtest", "judge"):
        record = step(same, name)
        assert record.status == "ok" and record.data["reason"] == NO_NEW_BAR, record
    assert f"no new bar since {trained.data['model_id']}" in step(same, "train").data["detail"]
    assert same.outcome == "succeeded"
    assert _files(tmp_path / "models") == models
    assert _files(tmp_path / "state" / "alerts") == alerts
    assert len(manifest(tmp_path)) == 1

    write_bars(tmp_path, 302)  # two new bars of three
    early, _ = run_cycle(config)
    assert step(early, "train").data["reason"] == CADENCE_NOT_REACHED
    assert "2 of 3 new bars" in step(early, "train").data["detail"]
    assert step(early, "trade").status == "ok"  # trading goes on between trainings
    assert len(manifest(tmp_path)) == 1

    write_bars(tmp_path, 303)
    due, _ = run_cycle(config)
    assert step(due, "train").data.get("model_id") not in (None, trained.data["model_id"])
    assert step(due, "judge").data.get("status") in ("approved", "rejected")
    assert len(manifest(tmp_path)) == 2
