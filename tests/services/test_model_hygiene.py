"""The models folder stays bounded (services/model_hygiene.py): old rejected candidates are
pruned, orphans of interrupted cycles removed at start-up; both audited; nothing is deleted
when the manifest cannot be read."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from _support.manifest_support import as_json, entry

from aistock_actors.services.model_hygiene import (
    MODELS_PRUNED,
    ORPHAN_MODEL_REMOVED,
    prune_rejected,
    remove_orphans,
)
from aistock_actors.store.audit import AuditLog, read_audit
from aistock_actors.store.models import ModelRecord, ModelStore
from aistock_actors.store.state import CycleSummary, SupervisorState

REPO = Path(__file__).resolve().parents[2]


def plant(models: Path, model_id: str, day: int) -> None:
    folder = models / model_id
    folder.mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"artifact")
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=day)
    record = ModelRecord(model_id=model_id, sha256="0" * 64, created_at=when, metrics={},
                         threshold=0.5, feature_names=[], horizon=1,
                         extra={"data_end": when.isoformat()})
    (folder / "metadata.json").write_bytes(msgspec.json.encode(record))


def write_manifest(state: Path, entries: list[tuple[str, str]]) -> None:
    path = state / "promotion" / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json([entry(m, s) for m, s in entries])))


def actions(state: Path) -> list[tuple[str, dict[str, object]]]:
    records, _ = read_audit(state / "audit" / "log.jsonl")
    return [(r.action, r.details) for r in records]


def test_prune_keeps_the_newest_rejected_and_the_approved(tmp_path: Path) -> None:
    models, state = tmp_path / "models", tmp_path / "state"
    for day, model_id in enumerate(["m1", "m2", "m3", "m4", "m5", "m6"]):
        plant(models, model_id, day)
    write_manifest(state, [("m1", "rejected"), ("m2", "approved"), ("m3", "rejected"),
                           ("m4", "rejected"), ("m5", "rejected"), ("m6", "rejected")])
    audit = AuditLog(state / "audit" / "log.jsonl")
    removed = prune_rejected(ModelStore(models), state, 2, audit, "trainer")
    assert removed == ["m1", "m3", "m4"]
    assert sorted(p.name for p in models.iterdir()) == ["m2", "m5", "m6"]
    assert actions(state) == [(MODELS_PRUNED, {
        "removed": ["m1", "m3", "m4"], "keep_rejected": 2,
        "reason": "older than the newest keep_rejected rejected candidates"})]
    assert prune_rejected(ModelStore(models), state, 2, audit, "trainer") == []


def test_nothing_is_deleted_when_the_manifest_is_unreadable(tmp_path: Path) -> None:
    models, state = tmp_path / "models", tmp_path / "state"
    for day, model_id in enumerate(["m1", "m2", "m3"]):
        plant(models, model_id, day)
    (state / "promotion").mkdir(parents=True)
    (state / "promotion" / "manifest.json").write_text("[{torn")
    audit = AuditLog(state / "audit" / "log.jsonl")
    assert prune_rejected(ModelStore(models), state, 0, audit, "trainer") == []
    assert remove_orphans(ModelStore(models), state, audit, SupervisorState()) == []
    assert sorted(p.name for p in models.iterdir()) == ["m1", "m2", "m3"]


def test_orphans_and_cut_deletions_are_cleared_at_start_up(tmp_path: Path) -> None:
    models, state = tmp_path / "models", tmp_path / "state"
    judged, failed = "m-c20200101T000000Z-0001", "m-c20200102T000000Z-0002"
    killed, halted = "m-c20200104T000000Z-0004", "m-c20200103T000000Z-0003"
    for day, model_id in enumerate([judged, failed, halted, killed]):
        plant(models, model_id, day)
    (models / "m-half").mkdir()  # the artifact write was cut short: no metadata at all
    (models / "m-half" / "model.joblib").write_bytes(b"half")
    (models / ".m0.removing").mkdir()  # a deletion a crash interrupted
    write_manifest(state, [(judged, "rejected")])
    audit = AuditLog(state / "audit" / "log.jsonl")
    last = CycleSummary(cycle_id="c20200103T000000Z-0003", started_at="", finished_at="",
                        outcome="halted", steps=[])
    counters = SupervisorState(cycles_total=3, last_cycle=last)  # cycle 4 was never counted
    assert remove_orphans(ModelStore(models), state, audit, counters) == [halted, killed,
                                                                          "m-half"]
    assert sorted(p.name for p in models.iterdir()) == [judged, failed]  # its backtest failed
    assert [a for a, _ in actions(state)] == [ORPHAN_MODEL_REMOVED] * 3


def test_a_cli_start_removes_an_interrupted_cycles_model_and_audits_it(tmp_path: Path) -> None:
    from _support.fault_harness import reliability_config, write_bars

    write_bars(tmp_path, 200)
    config = reliability_config(tmp_path)
    plant(tmp_path / "models", "m-c20200101T000000Z-0001", 0)  # cycle 1 never finished
    done = subprocess.run([sys.executable, str(REPO / "supervisor.py"), str(config), "--run-once"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "models" / "m-c20200101T000000Z-0001").exists()
    removed = [d for a, d in actions(tmp_path / "state") if a == ORPHAN_MODEL_REMOVED]
    assert [d["model_id"] for d in removed] == ["m-c20200101T000000Z-0001"]
