"""A replay's cursor and result on disk: ``state/replay.json``.

Written atomically (with a ``.bak``) after every completed step, so ``--replay`` run again after
a crash, a SIGTERM, a halt or the end continues from the last completed step. Its presence marks
the state directory as a replay's: a live daemon's history is never mixed into one
(:func:`foreign_history` names what a state directory holds besides a replay).

A step counts as completed when its cycle finished (succeeded, failed or degraded): the cycle's
``supervisor.json`` record is written before this file, so a crash between the two is resolved
from the cycle id, which carries the step's market time (``aistock_actors.runtime.replay``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from aistock_actors.core.replay.summary import ReplaySummary
from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json, backup_path
from aistock_actors.store.state_file import load_state

REPLAY_FILE = "replay.json"

ReplayStatus = Literal["running", "complete", "halted", "stopped"]


class ReplayState(msgspec.Struct, kw_only=True):
    """``state/replay.json``: which bars the replay walks, how far it got, its summary."""

    csv_dir: str
    """The CSV folder replayed (absolute): a replay continues only on the same data."""
    first_step: str
    """Market time of the first step (ISO-8601 UTC)."""
    last_step: str
    """Market time of the last step (``--to``, resolved to a bar)."""
    steps_total: int
    steps_done: int = 0
    done: str | None = None
    """Market time of the last completed step (None: none yet)."""
    status: ReplayStatus = "running"
    started_at: str = ""
    """Wall time the replay was first started."""
    updated_at: str = ""
    wall_seconds: float = 0.0
    """Wall time spent replaying, over every run."""
    runs: int = 0
    """How many times ``--replay`` ran on this state directory (1 + the resumptions)."""
    summary: ReplaySummary | None = None
    """The figures of the last run's end (a halt and a stop write them too)."""


class _Unreadable(Exception):
    """replay.json and its backup are both unreadable."""


def replay_path(state_dir: Path) -> Path:
    """``state/replay.json``."""
    return Path(state_dir) / REPLAY_FILE


def _unreadable() -> ReplayState:
    raise _Unreadable


def load_replay(state_dir: Path, alerts: AlertSink | None = None) -> ReplayState | None:
    """The replay's state (recovered from ``.bak`` if need be); None if this is no replay's
    state directory. Raises ``ValueError`` when both copies are unreadable."""
    path = replay_path(state_dir)
    if not path.exists() and not backup_path(path).exists():
        return None
    try:
        return load_state(path, ReplayState, _unreadable, alerts, actor="replay")
    except _Unreadable:
        raise ValueError(f"{path} and its backup are unreadable") from None


def save_replay(state_dir: Path, state: ReplayState) -> None:
    """Persist ``state/replay.json`` atomically (the previous version kept as ``.bak``)."""
    atomic_write_json(replay_path(state_dir), state)


_HISTORY = (
    "supervisor.json",
    "audit/log.jsonl",
    "paper/ledger.json",
    "promotion/manifest.json",
    "risk/limits.json",
    "bars/cursors.json",
)
"""Files that only a cycle (or an operator command) leaves in a state directory."""


def foreign_history(state_dir: Path, models_dir: Path) -> list[str]:
    """What ``state_dir``/``models_dir`` hold that a replay did not write: every history file
    when there is no ``replay.json``, or nothing (a replay's own directory, or a fresh one)."""
    state_dir, models_dir = Path(state_dir), Path(models_dir)
    if load_replay_marker(state_dir):
        return []
    found = [str(state_dir / name) for name in _HISTORY if (state_dir / name).exists()]
    if models_dir.is_dir() and any(models_dir.iterdir()):
        found.append(str(models_dir))
    return found


def load_replay_marker(state_dir: Path) -> bool:
    """Whether ``state_dir`` is a replay's (``replay.json`` or its backup exists)."""
    path = replay_path(state_dir)
    return path.exists() or backup_path(path).exists()
