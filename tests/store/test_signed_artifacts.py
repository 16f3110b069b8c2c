"""#17: a planted artifact never runs code; the signing key lives outside state/ and models/."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _support.paper_support import activate_model, trained_model, universe

from aistock_actors.config.loading import load_config
from aistock_actors.core.model.models import TrainedModel
from aistock_actors.errors import ConfigError, ModelIntegrityError, StateError
from aistock_actors.store.models import ModelStore
from aistock_actors.store.signing import IntegrityKey, load_signed, save_signed, signature_path

SUPERVISOR = Path(__file__).resolve().parents[2] / "supervisor.py"


class _Planted:
    """Unpickling this runs ``os.system`` (the attack of #17, item 1)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return trained_model(universe(2, 200), "m1")


def test_planted_pickle_with_rewritten_hashes_never_runs(
    tmp_path: Path, model: TrainedModel
) -> None:
    models = tmp_path / "models"
    activate_model(models, model)
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Planted(marker))
    (models / "m1" / "model.joblib").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    for meta in (models / "m1" / "metadata.json", models / "active" / "model.json"):
        record = json.loads(meta.read_text())
        record["sha256"] = digest
        meta.write_text(json.dumps(record))
    store = ModelStore(models)
    with pytest.raises(ModelIntegrityError, match="HMAC signature does not match"):
        store.load_active()
    with pytest.raises(ModelIntegrityError):
        store.load("m1")
    with pytest.raises(ModelIntegrityError):
        store.activate("m1")
    assert not marker.exists()


def test_an_artifact_without_signature_is_refused(tmp_path: Path, model: TrainedModel) -> None:
    models = tmp_path / "models"
    activate_model(models, model)
    signature_path(models / "m1" / "model.joblib").unlink()
    with pytest.raises(ModelIntegrityError, match="unsigned artifact refused"):
        ModelStore(models).load("m1")


def test_a_signature_from_another_key_is_refused(tmp_path: Path, model: TrainedModel) -> None:
    models = tmp_path / "models"
    activate_model(models, model)
    other = ModelStore(models, key=IntegrityKey(tmp_path / "elsewhere" / "other.key"))
    with pytest.raises(ModelIntegrityError, match="HMAC"):
        other.load("m1")
    assert ModelStore(models).load("m1").model_id == "m1"


def test_key_file_is_created_0600_outside_models_and_reused(tmp_path: Path) -> None:
    key = IntegrityKey.beside(tmp_path / "models")
    assert key.path == tmp_path / "integrity.key"
    signature = key.sign("p", b"data")
    assert stat.S_IMODE(key.path.stat().st_mode) == 0o600
    assert IntegrityKey(key.path).verify("p", b"data", signature)
    assert not IntegrityKey(key.path).verify("other purpose", b"data", signature)


def test_a_key_file_readable_by_others_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "integrity.key"
    path.write_text("x" * 64)
    path.chmod(0o644)
    with pytest.raises(StateError, match=f"integrity key file {path} is accessible by other"):
        IntegrityKey(path).secret()


def test_the_key_can_come_from_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AISTOCK_TEST_KEY", "k" * 40)
    key = IntegrityKey(tmp_path / "unused.key", "AISTOCK_TEST_KEY")
    save_signed({"weights": [1.0, 2.0]}, tmp_path / "state.joblib", key, "strategy:s1")
    assert load_signed(tmp_path / "state.joblib", key, "strategy:s1", dict) == {
        "weights": [1.0, 2.0]
    }
    assert not (tmp_path / "unused.key").exists()
    monkeypatch.setenv("AISTOCK_TEST_KEY", "short")
    with pytest.raises(StateError, match=r"\$AISTOCK_TEST_KEY is shorter"):
        IntegrityKey(tmp_path / "unused.key", "AISTOCK_TEST_KEY").secret()


def test_save_signed_round_trip_and_type_check(tmp_path: Path) -> None:
    key = IntegrityKey(tmp_path / "k.key")
    path = tmp_path / "strategy" / "state.joblib"
    save_signed([1, 2, 3], path, key, "strategy:s1")
    assert load_signed(path, key, "strategy:s1", list) == [1, 2, 3]
    with pytest.raises(ModelIntegrityError, match="does not hold a dict"):
        load_signed(path, key, "strategy:s1", dict)
    with pytest.raises(ModelIntegrityError, match="HMAC"):  # bound to its purpose
        load_signed(path, key, "strategy:s2", list)


def test_config_refuses_a_key_inside_the_state_folder(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({
        "state_dir": str(tmp_path / "state"),
        "security": {"integrity_key_file": str(tmp_path / "state" / "k.key")},
    }))
    with pytest.raises(ConfigError, match=r"integrity_key_file: .* lies inside state_dir"):
        load_config(config)


def test_sign_unsigned_models_signs_only_what_matches_its_sha256(
    tmp_path: Path, model: TrainedModel
) -> None:
    """The audited upgrade step for artifacts stored before signing (#17)."""
    models = tmp_path / "models"
    store = ModelStore(models)
    store.put(model)
    store.put(dataclasses.replace(model, model_id="m2"))
    for model_id in ("m1", "m2"):
        signature_path(store.artifact_path(model_id)).unlink()  # as written before #17
    tampered = store.artifact_path("m2")
    tampered.write_bytes(tampered.read_bytes() + b"x")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"state_dir": str(tmp_path / "state"),
                                  "models_dir": str(models)}))
    done = subprocess.run([sys.executable, str(SUPERVISOR), str(config),
                           "--sign-unsigned-models"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "signed 1 model(s); refused 1 whose bytes do not match their sha256: m2")
    assert ModelStore(models).load("m1").model_id == "m1"
    with pytest.raises(ModelIntegrityError):
        ModelStore(models).load("m2")
    last = json.loads((tmp_path / "state" / "audit" / "log.jsonl").read_text().splitlines()[-1])
    assert last["action"] == "models_signed"
    assert last["details"] == {"signed": ["m1"], "refused": ["m2"]}
