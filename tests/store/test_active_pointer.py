"""``models/active/model.json`` always exists: a fresh install and a retirement to no model write
a NoActiveModel document that every reader takes as "no model is active"."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

from aistock_actors.core.data.sample_data import generate_universe
from aistock_actors.core.model.labels import build_training_set
from aistock_actors.core.model.models import ModelParams, train_model
from aistock_actors.store.atomic import backup_path
from aistock_actors.store.models import ModelStore, says_no_model
from aistock_actors.store.promotion import deactivate


def test_fresh_pointer_then_activation_then_retirement(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    assert store.active_record() is None and not store.pointer_path.exists()
    store.ensure_pointer()
    first = json.loads(store.pointer_path.read_text())
    assert first["active"] is False and first["reason"] == "no model has been promoted yet"
    assert first["previous_model_id"] is None and store.active_record() is None
    store.ensure_pointer()  # idempotent: an existing pointer is left alone
    assert json.loads(store.pointer_path.read_text()) == first

    data = build_training_set(generate_universe(2, 200, seed=5), horizon=2)
    model = train_model(data.features, data.labels, data.label_end_times,
                        params=ModelParams(horizon=2, n_splits=3, embargo=2), model_id="m-1",
                        created_at=datetime(2026, 1, 2, tzinfo=UTC), seed=0)
    store.put(model)
    store.put(dataclasses.replace(model, model_id="m-2"))
    store.activate("m-1")
    store.activate("m-2")  # the pointer's .bak now names m-1
    record = store.active_record()
    assert record is not None and record.model_id == "m-2"
    assert backup_path(store.pointer_path).exists()

    assert deactivate(store) is True
    says = json.loads(store.pointer_path.read_text())
    assert says["active"] is False and says["previous_model_id"] == "m-2", says
    assert says_no_model(store.pointer_path) and store.active_record() is None
    assert not backup_path(store.pointer_path).exists()  # no recovery to the model that left
    assert (store.pointer_path.parent / "deactivated.json").exists()
    assert deactivate(store) is False  # already none: the document (and its why) stays
    assert json.loads(store.pointer_path.read_text()) == says
