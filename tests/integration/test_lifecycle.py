"""The model lifecycle end to end: real supervisor, real actors, real files, real process pool."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _support.lifecycle_support import (
    active_id,
    add_bars,
    assert_all_json_loads,
    audit_records,
    lifecycle_config,
    manifest,
    planted_frames,
    pointer,
    run_cycle,
    step,
    write_planted,
)
from _support.support import alert_codes

from aistock_actors.config import load_config
from aistock_actors.core.data.sample_data import write_universe_csvs
from aistock_actors.core.model import pipeline
from aistock_actors.core.model.labels import TrainingSet
from aistock_actors.services import operator_actions as operator
from aistock_actors.services import promotion_decisions as promotion_ops

REPO = Path(__file__).resolve().parents[2]
STAGES = ("policy_gates", "metric_consistency", "overfitting_detection", "return_drawdown_ratio",
          "min_trade_count", "transition_drawdown", "champion_challenger", "plausibility",
          "deflated_sharpe")


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state where one cycle (headless, loky pool) promoted a model trained on planted data."""
    tmp = tmp_path_factory.mktemp("promoted")
    write_planted(tmp)
    summary, _ = run_cycle(lifecycle_config(tmp, backend="loky"))
    (tmp / "summary.txt").write_text(repr(summary))
    return tmp


def clone(template: Path, tmp: Path, **config: object) -> Path:
    """Copy a state into ``tmp`` and write a config pointing at the copy."""
    for name in ("data", "state", "models"):
        shutil.copytree(template / name, tmp / name)
    shutil.copy2(template / "integrity.key", tmp / "integrity.key")  # the models' signing key
    add_bars(tmp)  # one new bar, so the cycle trains a challenger (the retraining cadence)
    return lifecycle_config(tmp, **config)  # type: ignore[arg-type]


def shuffled_training_set(frames: dict[str, pd.DataFrame], horizon: int) -> TrainingSet:
    data = pipeline.build_training_set(frames, horizon=horizon)
    labels = data.labels.to_numpy().copy()
    np.random.default_rng(0).shuffle(labels)
    return data._replace(labels=pd.Series(labels, index=data.labels.index))


def test_planted_pattern_is_promoted_with_every_stage_recorded(promoted: Path) -> None:
    summary = (promoted / "summary.txt").read_text()
    assert "outcome='succeeded'" in summary
    entries = manifest(promoted)
    approved = [e for e in entries if e["status"] == "approved"]  # the runbook's jq
    assert len(approved) == 1
    entry = approved[0]
    assert [s["name"] for s in entry["stages"]] == list(STAGES)
    for stage in entry["stages"][:6]:
        assert stage["status"] == "passed" and isinstance(stage["value"], float), stage
    assert entry["stages"][6]["note"] == "no_incumbent"
    assert entry["stages"][7]["status"] == "passed"  # plausible
    deflated = entry["stages"][8]
    assert deflated["status"] == "passed" and deflated["value"] >= 0.95
    assert deflated["note"] == "trials=1" and entry["backtest"]["trials"] == 1
    assert entry["backtest"]["bars_per_year"] == pytest.approx(261.0, rel=0.02)
    assert entry["reasons"] == [] and entry["backtest"]["trade_count"] >= 30
    assert active_id(promoted) == entry["model_id"] == entry["training"]["model_id"]
    promoted_audit = [r for r in audit_records(promoted) if r["action"] == "model_promoted"]
    assert len(promoted_audit) == 1
    details = promoted_audit[0]["details"]
    assert details["reason"] is None and details["entry_id"] == entry["id"]
    assert set(details["stages"]) == {f"stage{i}_{n}" for i, n in enumerate(STAGES, start=1)}
    assert "strategy_added" in [r["action"] for r in audit_records(promoted)]
    assert_all_json_loads(promoted)


def test_challenger_not_beating_the_incumbent_is_rejected(promoted: Path, tmp_path: Path) -> None:
    config = clone(promoted, tmp_path)
    before = pointer(tmp_path)
    summary, _ = run_cycle(config)
    assert summary.outcome == "succeeded"
    backtest = step(summary, "backtest").data
    assert backtest["incumbent_model_id"] == active_id(tmp_path)
    assert backtest["incumbent_sharpe"] is not None
    # Trained on these bars but the last, which has no label yet: compared on the full window,
    # and the note says why.
    assert backtest["champion_window_out_of_sample"] is False
    assert backtest["champion_window_bars"] == backtest["bars"]
    assert backtest["candidate_sharpe_champion_window"] == backtest["sharpe"]
    assert "only 0 bars after the incumbent's training end" in backtest["champion_window_note"]
    judge = step(summary, "judge").data
    assert judge["status"] == "rejected"
    assert "stage7_failed_champion_not_beaten" in judge["reasons"]
    assert "full window" in manifest(tmp_path)[-1]["stages"][6]["note"]
    assert "s7 champion_challenger=" in judge["stage_values"]
    assert pointer(tmp_path) == before
    rejected = [r for r in audit_records(tmp_path) if r["action"] == "auto_promotion_rejected"]
    assert rejected[-1]["details"]["reason"] == judge["reasons"][0]
    # The incumbent passed its own re-evaluation: the registry kept it without a grace period.
    assert not [r for r in audit_records(tmp_path) if r["action"].startswith("strategy_entered")]


def test_incumbent_is_scored_after_its_training_end_through_the_backtester(
    promoted: Path, tmp_path: Path
) -> None:
    config = clone(promoted, tmp_path)
    # Pretend the active model was trained on the bars up to 2016-08-31 only (its record's
    # data_end, which the Backtester reads): the ~125 daily bars after it are unseen by it.
    path = tmp_path / "models" / "active" / "model.json"
    record = json.loads(path.read_text())
    record["extra"]["data_end"] = "2016-08-31T00:00:00+00:00"
    path.write_text(json.dumps(record))
    summary, _ = run_cycle(config)
    backtest = step(summary, "backtest").data
    assert backtest["incumbent_data_end"] == "2016-08-31T00:00:00+00:00"
    assert backtest["champion_window_out_of_sample"] is True
    assert pd.Timestamp(backtest["champion_window_start"]) > pd.Timestamp("2016-08-31T00:00:00Z")
    assert backtest["champion_window_end"] == backtest["oos_end"]
    assert pipeline.MIN_CHAMPION_WINDOW_BARS <= backtest["champion_window_bars"] < backtest["bars"]
    assert backtest["incumbent_sharpe"] is not None
    assert backtest["candidate_sharpe_champion_window"] != backtest["sharpe"]
    stage7 = manifest(tmp_path)[-1]["stages"][6]
    assert f"({backtest['champion_window_bars']} bars, after the incumbent's training end)" in (
        stage7["note"])


def test_shuffled_labels_candidate_is_rejected_and_active_model_kept(
    promoted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = clone(promoted, tmp_path)
    before = pointer(tmp_path)
    monkeypatch.setattr(pipeline, "make_training_set", shuffled_training_set)
    summary, _ = run_cycle(config)
    judge = step(summary, "judge").data
    assert judge["status"] == "rejected" and not judge["approved"]
    assert judge["reasons"][0].startswith("stage1_failed")
    assert pointer(tmp_path) == before
    last = manifest(tmp_path)[-1]
    assert last["status"] == "rejected" and last["model_id"] == judge["model_id"]


def test_corrupt_active_model_fails_backtest_with_critical_alert(
    promoted: Path, tmp_path: Path
) -> None:
    config = clone(promoted, tmp_path)
    artifact = tmp_path / "models" / str(active_id(tmp_path)) / "model.joblib"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    before = pointer(tmp_path)
    summary, _ = run_cycle(config)
    assert summary.outcome == "failed"
    assert step(summary, "backtest").status == "failed"
    assert "model_integrity" in step(summary, "backtest").detail
    assert step(summary, "judge").status == "skipped"
    assert "model_integrity_failed" in alert_codes(tmp_path / "state", "critical")
    assert pointer(tmp_path) == before
    assert len(manifest(tmp_path)) == 1


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "supervisor.py"), str(config), *args],
                          cwd=config.parent, capture_output=True, text=True, timeout=120,
                          check=False)


def status_text(config: Path) -> str:
    return operator.render_status(operator.status(load_config(config)))


def test_supervised_mode_waits_for_operator_approve_and_reject(tmp_path: Path) -> None:
    write_planted(tmp_path)
    config = lifecycle_config(tmp_path, mode="supervised")
    first, _ = run_cycle(config)
    add_bars(tmp_path)
    second, _ = run_cycle(config)
    ids = [step(s, "judge").data["entry_id"] for s in (first, second)]
    assert [e["status"] for e in manifest(tmp_path)] == ["pending", "pending"]
    assert pointer(tmp_path) is None
    assert "pending approvals:    2" in status_text(config)

    approved = cli(config, "--approve", ids[0])
    assert approved.returncode == 0, approved.stderr
    assert active_id(tmp_path) == manifest(tmp_path)[0]["model_id"]
    rejected = cli(config, "--reject", ids[1])
    assert rejected.returncode == 0, rejected.stderr
    assert [e["status"] for e in manifest(tmp_path)] == ["approved", "rejected"]
    assert active_id(tmp_path) == manifest(tmp_path)[0]["model_id"]
    operator = [r for r in audit_records(tmp_path) if r["actor"] == "operator"]
    assert [r["action"] for r in operator][-3:] == [
        "strategy_added", "model_promoted", "promotion_rejected_by_operator"]

    again = cli(config, "--approve", ids[1])
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and "status is 'rejected'" in again.stderr
    with pytest.raises(ValueError, match="no manifest entry"):
        promotion_ops.decide(load_config(config), "no-such-entry", approve=False)
    status = status_text(config)
    assert f"active model:         {manifest(tmp_path)[0]['model_id']}" in status
    assert "pending approvals:    none" in status


def test_manual_mode_records_the_verdict_and_activates_nothing(tmp_path: Path) -> None:
    write_planted(tmp_path)
    summary, _ = run_cycle(lifecycle_config(tmp_path, mode="manual"))
    judge = step(summary, "judge").data
    assert judge["approved"] and judge["action"] == "record_only"
    assert [e["status"] for e in manifest(tmp_path)] == ["recorded"]
    assert pointer(tmp_path) is None and judge["active_model"] is None
    assert "promotion_verdict_recorded" in [r["action"] for r in audit_records(tmp_path)]


def test_too_little_history_trains_nothing_and_is_not_a_failure(tmp_path: Path) -> None:
    write_planted(tmp_path, n_bars=200)
    summary, _ = run_cycle(lifecycle_config(tmp_path))
    assert summary.outcome == "succeeded"
    for name in ("train", "backtest", "judge"):
        record = step(summary, name)
        assert record.status == "ok" and record.data["reason"] == "insufficient_history", record
    detail = step(summary, "train").data["detail"]
    assert "have 200" in detail
    assert "years of these bars" in detail  # the bar count said in time (daily bars here)
    assert manifest(tmp_path) == [] and pointer(tmp_path) is None
    assert not any(p.is_dir() for p in (tmp_path / "models").glob("m-*"))


def hourly_planted(tmp: Path, n_bars: int) -> None:
    """The planted bars on an hourly 24/7 clock (a crypto market): ``n_bars`` hours."""
    hours = pd.date_range("2024-01-01", periods=n_bars, freq="h", tz="UTC")
    frames = {s: f.set_axis(hours) for s, f in planted_frames(n_symbols=3, n_bars=n_bars).items()}
    write_universe_csvs(tmp / "data", frames)


def test_weeks_of_hourly_bars_are_not_enough_history_to_train(tmp_path: Path) -> None:
    """600 hourly bars pass the splits' bar count (497 at horizon 1), but they are 25 days:
    below the one-year floor (training.min_history_years) nothing is trained or judged, and the
    operator reads the floor and the history in time."""
    hourly_planted(tmp_path, 600)
    summary, _ = run_cycle(lifecycle_config(tmp_path))
    assert summary.outcome == "succeeded"
    for name in ("train", "backtest", "judge"):
        assert step(summary, name).data["reason"] == "insufficient_history"
    detail = step(summary, "train").data["detail"]
    assert detail.startswith("need 8766 bars (~1.0 years of these bars, ~8,766 a year)"), detail
    assert "have 600 (training.min_history_years 1)" in detail
    assert manifest(tmp_path) == [] and not any((tmp_path / "models").glob("m-*"))
