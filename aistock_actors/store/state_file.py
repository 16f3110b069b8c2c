"""Loading JSON state files with recovery: the file, else its ``.bak`` (error alert), else defaults.

Every state file of the system goes through :func:`load_state`, so "every state file stays
loadable" is one property of one function. A file is corrupt when it is not valid JSON or does not
match its type; both cases are recovered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec

from aistock_actors.errors import StateError
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import backup_path

T = TypeVar("T")

Decoder = Callable[[bytes, Path], T]
"""A file's own decoder (instead of ``msgspec.json.decode``): raises :class:`StateError` (or a
msgspec error) saying what is wrong, e.g. which entry of the promotion manifest."""


def try_decode(
    path: Path, type_: type[T], decode: Decoder[T] | None = None
) -> tuple[T | None, str | None]:
    """(value, None), (None, None) when the file is missing, or (None, what is wrong with it)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"unreadable: {exc.strerror or exc}"
    try:
        if decode is not None:
            return decode(raw, path), None
        return msgspec.json.decode(raw, type=type_), None
    except (msgspec.DecodeError, msgspec.ValidationError, StateError) as exc:
        return None, f"corrupt: {exc}"


def load_state(
    path: Path,
    type_: type[T],
    default: Callable[[], T],
    alerts: AlertSink | None,
    *,
    actor: str = "store",
    decode: Decoder[T] | None = None,
) -> T:
    """Load ``path`` as ``type_`` (with ``decode`` if given); fall back to ``.bak`` and then to
    ``default()`` with alerts.

    A missing file (first run) silently yields ``default()``.
    """
    path = Path(path)
    value, problem = try_decode(path, type_, decode)
    if value is not None:
        return value
    backup = backup_path(path)
    if problem is None and not backup.exists():
        return default()
    bak_value, bak_problem = try_decode(backup, type_, decode)
    if bak_value is not None:
        if alerts is not None:
            alerts.raise_alert(
                "error",
                "state_file_recovered_from_backup",
                f"{path.name} {problem or 'missing'}; "
                f"loaded the previous version from {backup.name}",
                actor=actor,
                details={"file": str(path), "problem": problem or "missing"},
            )
        return bak_value
    if alerts is not None:
        alerts.raise_alert(
            "critical",
            "state_file_unrecoverable",
            f"{path.name} {problem or 'missing'} and {backup.name} "
            f"{bak_problem or 'missing'}; starting from defaults",
            actor=actor,
            details={"file": str(path), "problem": problem, "backup_problem": bak_problem},
        )
    return default()
