"""A generation fence: only the newest instance of an actor may write its state files.

The supervisor cannot kill a hung actor thread, only abandon it and start a new instance. If the
abandoned one wakes up later it must not overwrite what the new one wrote. Each instance claims
the fence in ``load_state`` (a token with its generation, written atomically) and checks it right
before each write; an instance that finds another token raises :class:`StaleInstanceError`
(its crash report is then ignored by the supervisor as stale). Check-then-write is not atomic, so
this narrows the window to the few microseconds between the check and the rename rather than
closing it; the files themselves are always whole either way.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import msgspec

from aistock_actors.errors import StaleInstanceError
from aistock_actors.store.atomic import atomic_write_json


class _Owner(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    generation: int
    pid: int


class Fence:
    """The fence of one state folder."""

    def __init__(self, path: Path, name: str, generation: int) -> None:
        self.path = Path(path)
        self.name = name
        self.owner = _Owner(token=uuid.uuid4().hex, generation=generation, pid=os.getpid())

    def claim(self) -> None:
        """Make this instance the owner (called by the new instance at start)."""
        atomic_write_json(self.path, self.owner, keep_backup=False)

    def check(self) -> None:
        """Raise :class:`StaleInstanceError` unless this instance still owns the folder."""
        try:
            current = msgspec.json.decode(self.path.read_bytes(), type=_Owner)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise StaleInstanceError(f"{self.name}: fence {self.path} unreadable: {exc}") from exc
        if current.token != self.owner.token:
            raise StaleInstanceError(
                f"{self.name} gen {self.owner.generation} was replaced by gen "
                f"{current.generation}: refusing to write"
            )
