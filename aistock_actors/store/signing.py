"""Signed artifacts: an HMAC-SHA256 key kept outside ``state/`` and ``models/``, and the one
save/load pair every pickled artifact (models, user-strategy state) goes through.

An attacker who can write ``models/`` can rewrite a sha256 beside an artifact, but not its HMAC:
the key lives in a 0600 file elsewhere (``security.integrity_key_file``, default ``integrity.key``
beside the models folder, created on first use) or in an environment variable
(``security.integrity_key_env``). :func:`load_signed` checks the signature BEFORE unpickling, so a
planted pickle never runs. The same key anchors the audit chain (``store/audit.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from aistock_actors.errors import ModelIntegrityError, StateError
from aistock_actors.store.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from aistock_actors.config.loading import LoadedConfig

KEY_FILE_NAME = "integrity.key"
SIGNATURE_SUFFIX = ".sig"
_MIN_KEY_BYTES = 32

T = TypeVar("T")


class IntegrityKey:
    """The secret HMAC key; from an environment variable if given and set, else a key file."""

    def __init__(self, path: Path, env_name: str | None = None) -> None:
        self.path = Path(path)
        self.env_name = env_name
        self._secret: bytes | None = None

    @classmethod
    def beside(cls, models_dir: Path) -> IntegrityKey:
        """The default key: ``integrity.key`` in the folder that holds ``models/``."""
        return cls(Path(models_dir).resolve().parent / KEY_FILE_NAME)

    @classmethod
    def from_config(cls, loaded: LoadedConfig) -> IntegrityKey:
        """The key a loaded config names (``security.integrity_key_file`` / ``_env``)."""
        return cls(loaded.integrity_key_file, loaded.config.security.integrity_key_env)

    def secret(self) -> bytes:
        """Return the key bytes, creating the key file (0600) on first use.

        :class:`StateError` names the file or variable when the key is too short, unreadable,
        or readable by other users.
        """
        if self._secret is None:
            self._secret = self._read()
        return self._secret

    def _read(self) -> bytes:
        if self.env_name and os.environ.get(self.env_name):
            value = os.environ[self.env_name].strip().encode()
            if len(value) < _MIN_KEY_BYTES:
                raise StateError(
                    f"integrity key in ${self.env_name} is shorter than {_MIN_KEY_BYTES} characters"
                )
            return value
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._create()
        except OSError as exc:
            raise StateError(f"integrity key file {self.path} is unreadable: {exc}") from exc
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                raise StateError(
                    f"integrity key file {self.path} is accessible by other users "
                    f"(mode {mode:04o}); run chmod 600 {self.path}"
                )
            value = os.read(fd, 4096).strip()
        finally:
            os.close(fd)
        if len(value) < _MIN_KEY_BYTES:
            raise StateError(
                f"integrity key file {self.path} holds fewer than {_MIN_KEY_BYTES} bytes"
            )
        return value

    def _create(self) -> bytes:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32).encode()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return self._read()
        try:
            os.write(fd, value + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        return value

    def sign(self, purpose: str, data: bytes) -> str:
        """Return the hex HMAC-SHA256 of ``data`` bound to ``purpose`` (e.g. the model id)."""
        mac = hmac.new(self.secret(), purpose.encode() + b"\0", hashlib.sha256)
        mac.update(data)
        return mac.hexdigest()

    def verify(self, purpose: str, data: bytes, signature: str) -> bool:
        """Whether ``signature`` is this key's HMAC of ``data`` for ``purpose``."""
        return hmac.compare_digest(self.sign(purpose, data), signature.strip())


def signature_path(path: Path) -> Path:
    """Where the signature of the artifact at ``path`` is stored (``<name>.sig`` beside it)."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def dump_bytes(obj: object) -> bytes:
    """Serialise ``obj`` with joblib (what :func:`save_signed` writes)."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def save_signed(obj: object, path: Path, key: IntegrityKey, purpose: str) -> bytes:
    """Atomically write ``obj`` to ``path`` and its HMAC to ``<path>.sig``; return the bytes.

    The artifact is written first: a crash in between leaves a stale signature, which the next
    load refuses (never runs) and the next save replaces.
    """
    data = dump_bytes(obj)
    atomic_write_bytes(Path(path), data, keep_backup=False)
    signature = key.sign(purpose, data).encode()
    atomic_write_bytes(signature_path(Path(path)), signature, keep_backup=False)
    return data


def verified_bytes(path: Path, key: IntegrityKey, purpose: str) -> bytes:
    """Read ``path`` and check its signature; :class:`ModelIntegrityError` if absent or wrong."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ModelIntegrityError(f"{path}: artifact missing") from exc
    try:
        signature = signature_path(Path(path)).read_text("ascii", "replace")
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"{path}: unsigned artifact refused (no {SIGNATURE_SUFFIX} signature)"
        ) from None
    if not key.verify(purpose, data, signature):
        raise ModelIntegrityError(
            f"{path}: HMAC signature does not match (tampered, or signed with another key); "
            "refused without loading"
        )
    return data


def load_signed(path: Path, key: IntegrityKey, purpose: str, expected: type[T]) -> T:
    """Unpickle ``path`` only after its signature verifies, and only if it holds ``expected``."""
    data = verified_bytes(path, key, purpose)
    import joblib

    try:
        obj = joblib.load(io.BytesIO(data))
    except Exception as exc:  # signed by us, so the code cannot read what it once wrote
        raise StateError(f"{path}: cannot load a verified artifact: {exc}") from exc
    if not isinstance(obj, expected):
        raise ModelIntegrityError(f"{path}: does not hold a {expected.__name__}")
    return obj
