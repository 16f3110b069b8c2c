"""ActiveModelCache: the active model loaded once, re-verified whenever a file of it changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _support.paper_support import trained_model, universe

from aistock_actors.core.model.models import TrainedModel
from aistock_actors.errors import ModelIntegrityError
from aistock_actors.store.model_cache import ActiveModelCache, file_stamp
from aistock_actors.store.models import ModelRecord, ModelStore


@pytest.fixture(scope="module")
def two_models() -> tuple[TrainedModel, TrainedModel]:
    frames = universe(3, 200)
    return trained_model(frames, "m-one"), trained_model(frames, "m-two")


def _store(tmp_path: Path, models: tuple[TrainedModel, TrainedModel]) -> ModelStore:
    store = ModelStore(tmp_path / "models")
    for model in models:
        store.put(model)
    store.activate(models[0].model_id)
    return store


def _cache(store: ModelStore) -> ActiveModelCache[TrainedModel]:
    return ActiveModelCache(store, store.load_active)


def _active(cache: ActiveModelCache[TrainedModel]) -> tuple[ModelRecord, TrainedModel]:
    got = cache.get()
    assert got is not None
    return got


def test_the_active_model_is_loaded_once_while_nothing_changes(
    tmp_path: Path, two_models: tuple[TrainedModel, TrainedModel]
) -> None:
    cache = _cache(_store(tmp_path, two_models))
    first = _active(cache)
    for _ in range(5):
        again = _active(cache)
        assert again[1] is first[1] and again[0] == first[0]
    assert cache.loads == 1


def test_a_new_active_pointer_loads_the_new_model(
    tmp_path: Path, two_models: tuple[TrainedModel, TrainedModel]
) -> None:
    store = _store(tmp_path, two_models)
    cache = _cache(store)
    assert _active(cache)[0].model_id == "m-one"
    store.activate("m-two")
    assert _active(cache)[0].model_id == "m-two"
    store.write_no_model("retired")
    assert cache.get() is None
    assert cache.loads == 3


def test_an_artifact_replaced_after_the_verified_load_is_refused(
    tmp_path: Path, two_models: tuple[TrainedModel, TrainedModel]
) -> None:
    store = _store(tmp_path, two_models)
    cache = _cache(store)
    _active(cache)
    artifact = store.artifact_path("m-one")
    planted = artifact.with_name("planted")
    planted.write_bytes(store.artifact_path("m-two").read_bytes())  # a valid pickle, other model
    os.replace(planted, artifact)
    with pytest.raises(ModelIntegrityError, match=r"model\.joblib"):
        cache.get()
    with pytest.raises(ModelIntegrityError):  # and on every later call: never the stale object
        cache.get()


def test_an_artifact_rewritten_in_place_with_its_mtime_put_back_is_refused(
    tmp_path: Path, two_models: tuple[TrainedModel, TrainedModel]
) -> None:
    store = _store(tmp_path, two_models)
    cache = _cache(store)
    _active(cache)
    artifact = store.artifact_path("m-one")
    before = os.stat(artifact)
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF  # same size, same inode
    stamp = file_stamp(artifact)
    for _ in range(200):  # the ctime must move past the file system's timestamp granularity
        with open(artifact, "r+b") as handle:
            handle.write(bytes(data))
        os.utime(artifact, ns=(before.st_atime_ns, before.st_mtime_ns))
        if file_stamp(artifact) != stamp:
            break
    assert os.stat(artifact).st_mtime_ns == before.st_mtime_ns
    with pytest.raises(ModelIntegrityError):
        cache.get()


def test_a_replaced_signature_makes_the_cache_verify_again(
    tmp_path: Path, two_models: tuple[TrainedModel, TrainedModel]
) -> None:
    store = _store(tmp_path, two_models)
    cache = _cache(store)
    _active(cache)
    signature = store.artifact_path("m-one").with_name("model.joblib.sig")
    signature.write_bytes(b"0" * len(signature.read_bytes()))
    with pytest.raises(ModelIntegrityError):
        cache.get()
    assert cache.loads == 2
