"""Control-plane messages: halt and resume broadcasts, crash reports, kill-switch events."""

from __future__ import annotations

from aistock_actors.messages import Message


class Halt(Message, frozen=True, kw_only=True):
    """Broadcast to every actor when the system halts; no side effect may follow."""

    kind: str
    """Halt kind, e.g. ``kill_switch`` or ``max_failures_reached``."""
    reason: str
    """Machine-readable reason."""


class Resume(Message, frozen=True, kw_only=True):
    """Broadcast when the operator clears a halt."""

    reason: str = "operator_resumed"


class ActorCrashed(Message, frozen=True, kw_only=True):
    """An actor died from an unexpected exception while handling a tell (from ``on_failure``)."""

    actor: str
    generation: int
    error: str


class ActorStartFailed(Message, frozen=True, kw_only=True):
    """An actor's ``on_start`` (state reload) raised; pykka stopped it without ``on_failure``."""

    actor: str
    generation: int
    error: str


class CheckKillSwitch(Message, frozen=True, kw_only=True):
    """Periodic tick asking the KillSwitchWatcher to look at its sources now."""


class KillSwitchTripped(Message, frozen=True, kw_only=True):
    """A kill-switch source says stop."""

    source: str
    """``file`` or ``remote``."""
    detail: str = ""
    actor: str = ""
    generation: int = 0


ControlMessage = Halt | Resume | CheckKillSwitch
"""Control messages every actor may receive."""

SupervisorEvent = ActorCrashed | ActorStartFailed | KillSwitchTripped
"""Unsolicited events told to the supervisor (replies to requests are the other half)."""
