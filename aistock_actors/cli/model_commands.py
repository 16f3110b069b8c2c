"""``--sign-unsigned-models``: the one-time, audited upgrade step for model artifacts written
before artifacts were signed (#17).

For every stored model without a ``model.joblib.sig`` whose bytes still match the sha256 in its
``metadata.json``, the signature is written with the integrity key. Run it once, right after the
upgrade, on a ``models/`` folder you trust: signing is exactly the trust decision the signature
records. Runs under the state lock; writes a ``models_signed`` audit record.
"""

from __future__ import annotations

from aistock_actors.config import LoadedConfig
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.audit_anchor import anchor_for, audit_path
from aistock_actors.store.lock import DaemonLock
from aistock_actors.store.models import ModelStore, sha256_hex
from aistock_actors.store.signing import IntegrityKey, signature_path


def sign_unsigned_models(loaded: LoadedConfig) -> str:
    """Sign the unsigned artifacts that match their recorded sha256; one line saying what."""
    key = IntegrityKey.from_config(loaded)
    store = ModelStore(loaded.models_dir, None, key)
    signed: list[str] = []
    refused: list[str] = []
    with DaemonLock(loaded.state_dir, "sign-models"):
        for record in store.list_models():
            artifact = store.artifact_path(record.model_id)
            if signature_path(artifact).exists():
                continue
            try:
                data = artifact.read_bytes()
            except OSError:
                refused.append(record.model_id)
                continue
            if sha256_hex(data) != record.sha256:
                refused.append(record.model_id)
                continue
            store.write_signature(artifact, record.model_id, data)
            signed.append(record.model_id)
        AuditLog(audit_path(loaded), anchor=anchor_for(loaded)).append(
            "models_signed", "operator", {"signed": signed, "refused": refused})
    text = f"signed {len(signed)} model(s)"
    if refused:
        text += f"; refused {len(refused)} whose bytes do not match their sha256: "
        text += ", ".join(refused)
    return text
