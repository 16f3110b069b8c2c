"""The supervisor's own state files and the operator's switch files.

- ``state/HALTED``: present while halted; JSON with kind, reason, message and time. It survives a
  process restart until the operator clears it (``--resume`` or ``--unkill``). An unreadable
  HALTED file still means halted (fail safe).
- ``state/KILL_SWITCH``: presence is the file kill switch (``touch`` or ``--kill``).
- ``state/supervisor.json``: consecutive failed cycles, totals, restarts, and the last cycle with
  the outcome of each step (what ``--status`` shows).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.state_file import load_state

HALTED_FILE = "HALTED"
KILL_SWITCH_FILE = "KILL_SWITCH"
SUPERVISOR_FILE = "supervisor.json"


class HaltState(msgspec.Struct, frozen=True, kw_only=True):
    """Why and when the system halted."""

    kind: str
    """``kill_switch``, ``max_failures_reached``, ``restart_intensity_exceeded``, ``resource``,
    ``operator`` or ``drawdown``."""
    reason: str
    message: str
    halted_at: str
    details: dict[str, Any] = {}


class StepRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one step of one cycle."""

    name: str
    status: str
    duration_s: float = 0.0
    detail: str = ""
    data: dict[str, Any] = {}


class CycleSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One finished cycle."""

    cycle_id: str
    started_at: str
    finished_at: str
    outcome: str
    steps: list[StepRecord]


class SupervisorState(msgspec.Struct, kw_only=True):
    """Counters that must survive restarts of the process."""

    consecutive_failures: int = 0
    cycles_total: int = 0
    cycles_failed: int = 0
    cycles_succeeded: int = 0
    cycles_degraded: int = 0
    """Cycles that skipped a step whose actor was still restarting from a counted fault."""
    last_success_at: str | None = None
    restarts: dict[str, int] = {}
    last_cycle: CycleSummary | None = None


def kill_switch_path(state_dir: Path) -> Path:
    """Path of the file kill switch."""
    return Path(state_dir) / KILL_SWITCH_FILE


def kill_switch_active(state_dir: Path) -> bool:
    """Whether ``state/KILL_SWITCH`` exists."""
    return kill_switch_path(state_dir).exists()


def halted_path(state_dir: Path) -> Path:
    """Path of the persisted halt."""
    return Path(state_dir) / HALTED_FILE


def read_halt(state_dir: Path) -> HaltState | None:
    """The persisted halt, or None; an unreadable HALTED file is reported as a halt."""
    path = halted_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raw = b""
        problem = exc.strerror or str(exc)
    else:
        try:
            return msgspec.json.decode(raw, type=HaltState)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            problem = str(exc)
    return HaltState(
        kind="unknown",
        reason="halt_file_unreadable",
        message=f"{path} exists but cannot be read ({problem}); treated as halted",
        halted_at="unknown",
    )


def write_halt(state_dir: Path, halt: HaltState) -> None:
    """Persist the halt atomically."""
    atomic_write_json(halted_path(state_dir), halt)


def clear_halt(state_dir: Path) -> bool:
    """Remove the halt file (and its backup); return whether it existed."""
    path = halted_path(state_dir)
    existed = path.exists()
    for candidate in (path, path.with_name(path.name + ".bak")):
        candidate.unlink(missing_ok=True)
    return existed


def load_supervisor_state(state_dir: Path, alerts: AlertSink | None) -> SupervisorState:
    """Load ``supervisor.json`` with ``.bak``/defaults recovery."""
    return load_state(
        Path(state_dir) / SUPERVISOR_FILE,
        SupervisorState,
        SupervisorState,
        alerts,
        actor="supervisor",
    )


def save_supervisor_state(state_dir: Path, state: SupervisorState) -> None:
    """Persist ``supervisor.json`` atomically."""
    atomic_write_json(Path(state_dir) / SUPERVISOR_FILE, state)
