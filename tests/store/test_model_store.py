"""Model store: hash-verified artifacts, an explicit active pointer, save() writes one path (T7)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aistock_actors.core.model.labels import TrainingSet, build_training_set
from aistock_actors.core.model.models import ModelParams, TrainedModel, train_model
from aistock_actors.errors import ModelIntegrityError, StateError
from aistock_actors.store.alerts import AlertSink, list_alerts
from aistock_actors.store.models import ModelStore

T0 = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)


def random_walk_frames(n_symbols: int, n_bars: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2019-01-01", periods=n_bars, freq="B", tz="UTC")
    frames = {}
    for k in range(n_symbols):
        close = 20.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n_bars)))
        frames[f"S{k}"] = pd.DataFrame(
            {
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "volume": rng.integers(100, 1_000, n_bars).astype(float),
            },
            index=index,
        )
    return frames


@pytest.fixture(scope="module")
def data() -> TrainingSet:
    return build_training_set(random_walk_frames(3, 300, seed=4), horizon=2)


@pytest.fixture(scope="module")
def base_model(data: TrainingSet) -> TrainedModel:
    return train_model(
        data.features,
        data.labels,
        data.label_end_times,
        params=ModelParams(horizon=2, n_splits=3, embargo=2),
        model_id="base",
        created_at=T0,
        seed=0,
    )


def variant(model: TrainedModel, model_id: str, hours: int = 0) -> TrainedModel:
    return dataclasses.replace(
        model, model_id=model_id, created_at=T0 + timedelta(hours=hours)
    ).with_threshold(0.6 + hours / 100)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def test_put_writes_layout_and_does_not_activate(
    store: ModelStore, base_model: TrainedModel
) -> None:
    model = variant(base_model, "m1")
    record = store.put(model, {"metrics": {"sharpe": 1.2}, "note": "nightly"})
    joblib_path = store.root / "m1" / "model.joblib"
    assert record.sha256 == hashlib.sha256(joblib_path.read_bytes()).hexdigest()
    meta = json.loads((store.root / "m1" / "metadata.json").read_text())
    assert meta["id"] == "m1" and meta["sha256"] == record.sha256
    assert meta["threshold"] == 0.6 and meta["feature_names"] == list(model.feature_names)
    assert meta["metrics"]["sharpe"] == 1.2 and "test_accuracy" in meta["metrics"]
    assert meta["extra"] == {"note": "nightly"}
    assert datetime.fromisoformat(meta["created_at"]) == T0
    assert store.active_record() is None and store.load_active() is None
    assert not (store.root / "active").exists()


def test_activate_then_load_round_trips(
    store: ModelStore, base_model: TrainedModel, data: TrainingSet
) -> None:
    model = variant(base_model, "m1")
    record = store.put(model)
    active = store.activate("m1", expected_sha256=record.sha256, activated_at=T0)
    pointer = json.loads(store.pointer_path.read_text())
    assert pointer["id"] == "m1" and pointer["sha256"] == record.sha256
    assert pointer["metrics"]["test_accuracy"] == model.test_accuracy
    loaded_active = store.load_active()
    assert loaded_active is not None
    loaded_record, loaded = loaded_active
    assert loaded_record == active and loaded_record.activated_at == T0
    assert loaded.confidence_threshold == model.confidence_threshold == loaded_record.threshold
    rows = data.features.iloc[-30:]
    assert np.array_equal(loaded.signals(rows).confidence, model.signals(rows).confidence)
    assert store.load("m1").model_id == "m1"


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_candidate_is_refused_and_pointer_stays(
    store: ModelStore, base_model: TrainedModel, damage: str
) -> None:
    good = store.put(variant(base_model, "good"))
    store.activate("good")
    pointer_before = store.pointer_path.read_bytes()
    bad = store.put(variant(base_model, "bad", hours=1))
    path = store.artifact_path("bad")
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 3]))
    else:
        path.unlink()
    with pytest.raises(ModelIntegrityError) as err:
        store.load("bad")
    assert str(path) in str(err.value) and bad.sha256 in str(err.value)
    if damage != "delete":
        assert hashlib.sha256(path.read_bytes()).hexdigest() in str(err.value)
    with pytest.raises(ModelIntegrityError):
        store.activate("bad")
    active = store.active_record()
    assert active is not None and active.model_id == "good" and active.sha256 == good.sha256
    assert store.pointer_path.read_bytes() == pointer_before
    assert store.load_active() is not None


def test_tampered_active_model_fails_to_load_but_pointer_still_names_it(
    store: ModelStore, base_model: TrainedModel
) -> None:
    store.put(variant(base_model, "m1"))
    store.activate("m1")
    path = store.artifact_path("m1")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelIntegrityError, match="sha256"):
        store.load_active()
    record = store.active_record()
    assert record is not None and record.model_id == "m1"


def test_save_to_an_experimental_path_touches_nothing_else(
    store: ModelStore, base_model: TrainedModel, tmp_path: Path
) -> None:
    """T7: save() writes exactly the path it is given (and its signature, #17); the active
    pointer is byte-identical."""
    store.put(variant(base_model, "m1"))
    store.activate("m1")
    before = snapshot(store.root)
    experimental = tmp_path / "experiments" / "experimental_model.joblib"
    digest = store.save(variant(base_model, "exp", hours=2), experimental)
    assert snapshot(store.root) == before
    assert hashlib.sha256(experimental.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in experimental.parent.iterdir()) == [
        "experimental_model.joblib", "experimental_model.joblib.sig"]
    inside = store.root / "m1" / "scratch.joblib"
    store.save(variant(base_model, "exp2"), inside)
    after = snapshot(store.root)
    assert after.pop("m1/scratch.joblib") and after.pop("m1/scratch.joblib.sig")
    assert after == before


def test_expected_sha_mismatch_is_refused(store: ModelStore, base_model: TrainedModel) -> None:
    store.put(variant(base_model, "m1"))
    with pytest.raises(ModelIntegrityError, match="expected"):
        store.activate("m1", expected_sha256="0" * 64)
    assert store.active_record() is None


def test_history_and_previous_active(store: ModelStore, base_model: TrainedModel) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        store.put(variant(base_model, name, hours=i))
        store.activate(name, activated_at=T0 + timedelta(days=i))
    assert [r.model_id for r in store.previous_active(5)] == ["b", "a"]
    assert [r.model_id for r in store.previous_active()] == ["b"]
    store.activate("a")  # rollback
    assert [r.model_id for r in store.previous_active(5)] == ["c", "b"]
    history = json.loads(store.history_path.read_text())["activations"]
    assert [h["id"] for h in history] == ["a", "b", "c", "a"]


def test_history_heals_after_a_crash_between_pointer_and_history(
    store: ModelStore, base_model: TrainedModel
) -> None:
    for i, name in enumerate(["a", "b", "c"]):
        store.put(variant(base_model, name, hours=i))
    store.activate("a")
    history_after_a = store.history_path.read_bytes()
    store.activate("b")
    store.history_path.write_bytes(history_after_a)  # the crash lost b's history entry
    assert [r.model_id for r in store.previous_active()] == ["a"]
    store.activate("c")
    history = json.loads(store.history_path.read_text())["activations"]
    assert [h["id"] for h in history] == ["a", "b", "c"]


def test_corrupt_pointer_recovers_from_backup_with_an_alert(
    tmp_path: Path, base_model: TrainedModel
) -> None:
    alerts = AlertSink(tmp_path / "alerts")
    store = ModelStore(tmp_path / "models", alerts=alerts)
    for i, name in enumerate(["a", "b"]):
        store.put(variant(base_model, name, hours=i))
        store.activate(name)
    store.pointer_path.write_bytes(b'{"id": "b", "sha')
    record = store.active_record()
    assert record is not None and record.model_id == "a"  # the previous complete pointer
    assert list_alerts(tmp_path / "alerts", "error")
    store.pointer_path.with_name("model.json.bak").write_bytes(b"garbage")
    with pytest.raises(StateError):
        store.active_record()
    store.activate("b")  # an explicit activation repairs the pointer
    repaired = store.active_record()
    assert repaired is not None and repaired.model_id == "b"


def test_ids_are_immutable_and_validated(store: ModelStore, base_model: TrainedModel) -> None:
    model = variant(base_model, "m1")
    first = store.put(model)
    assert store.put(model) == first
    with pytest.raises(StateError, match="other content"):
        store.put(model.with_threshold(0.77))
    store.artifact_path("m1").write_bytes(b"truncated")
    assert store.put(model) == first  # same content again repairs the artifact
    assert store.load("m1").model_id == "m1"
    for bad_id in ("active", "../escape", "", "a/b"):
        with pytest.raises(ValueError, match="invalid model id"):
            store.put(dataclasses.replace(model, model_id=bad_id))
    with pytest.raises(StateError, match="no stored model"):
        store.activate("missing")


def test_list_models_oldest_first(store: ModelStore, base_model: TrainedModel) -> None:
    assert store.list_models() == []
    store.put(variant(base_model, "z-late", hours=5))
    store.put(variant(base_model, "a-early", hours=1))
    store.activate("a-early")
    (store.root / "half-written").mkdir()
    assert [r.model_id for r in store.list_models()] == ["a-early", "z-late"]
