"""The StrategyModel artifact kind: stored and loaded through the same signed ModelStore as a
TrainedModel; a planted or swapped artifact never loads."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aistock_actors.core.strategy.artifact import StrategyModel, StrategySpec
from aistock_actors.core.strategy.rules import SmaCross
from aistock_actors.errors import ModelIntegrityError
from aistock_actors.store.models import ModelStore
from aistock_actors.store.signing import dump_bytes

CREATED = datetime(2024, 1, 2, tzinfo=UTC)


def artifact(model_id: str, state: object = None) -> StrategyModel:
    return StrategyModel(
        model_id=model_id, created_at=CREATED, spec=StrategySpec(name="sma_cross",
                                                                  builtin=SmaCross()),
        state=state, horizon=5, train_accuracy=0.55, test_accuracy=0.53,
        candidates={"sma_cross": 1.2}, metrics={"oos_sharpe": 1.2},
    )


def test_a_strategy_model_round_trips_and_activates(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    record = store.put(artifact("s1", {"learned": [1.0, 2.0]}), {"artifact": "strategy"})
    assert record.horizon == 5 and record.extra["artifact"] == "strategy"
    loaded = store.load("s1")
    assert isinstance(loaded, StrategyModel)
    assert loaded.spec.builtin == SmaCross() and loaded.state == {"learned": [1.0, 2.0]}
    store.activate("s1")
    active = store.load_active()
    assert active is not None and isinstance(active[1], StrategyModel)


def test_a_planted_strategy_artifact_with_rewritten_hashes_never_loads(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    store.put(artifact("s1"))
    store.activate("s1")
    planted = dump_bytes(artifact("s1", state="an attacker's state"))
    (tmp_path / "models" / "s1" / "model.joblib").write_bytes(planted)
    digest = hashlib.sha256(planted).hexdigest()
    for meta in (tmp_path / "models" / "s1" / "metadata.json",
                 tmp_path / "models" / "active" / "model.json"):
        record = json.loads(meta.read_text())
        record["sha256"] = digest
        meta.write_text(json.dumps(record))
    with pytest.raises(ModelIntegrityError, match="HMAC signature does not match"):
        store.load("s1")
    with pytest.raises(ModelIntegrityError):
        store.load_active()


def test_an_artifact_stored_under_another_id_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    store.put(artifact("s1"))
    store.put(artifact("s2"))
    # s2's signed bytes copied over s1 (with s1's record rewritten) do not verify as s1's.
    s2 = tmp_path / "models" / "s2" / "model.joblib"
    (tmp_path / "models" / "s1" / "model.joblib").write_bytes(s2.read_bytes())
    (tmp_path / "models" / "s1" / "model.joblib.sig").write_bytes(
        (tmp_path / "models" / "s2" / "model.joblib.sig").read_bytes())
    meta = tmp_path / "models" / "s1" / "metadata.json"
    record = json.loads(meta.read_text())
    record["sha256"] = hashlib.sha256(s2.read_bytes()).hexdigest()
    meta.write_text(json.dumps(record))
    with pytest.raises(ModelIntegrityError):
        store.load("s1")
