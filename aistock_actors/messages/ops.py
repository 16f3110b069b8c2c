"""Operations messages: results that the network loop tells back to the watcher actors.

An HTTP call never runs on an actor's thread: the actor submits a coroutine to the network
loop (``aistock_actors/net/services.py``) and goes on; the outcome arrives later as one of these.
"""

from __future__ import annotations

from aistock_actors.messages import Message
from aistock_actors.messages.control import CheckKillSwitch


class RemoteKillSwitchChecked(Message, frozen=True, kw_only=True):
    """Outcome of one remote kill-switch check (retries included)."""

    active: bool | None
    """True: the remote switch says stop; False: it says run; None: the check failed."""
    attempts: int = 1
    """HTTP attempts made."""
    error: str = ""
    """Why the check failed (secrets already masked)."""


class HealthReportDelivered(Message, frozen=True, kw_only=True):
    """Outcome of one health-report POST (retries included)."""

    ok: bool
    """Whether the monitoring endpoint accepted the report (HTTP 2xx)."""
    attempts: int = 1
    """HTTP attempts made."""
    error: str = ""
    """Why it failed (secrets already masked)."""


KillSwitchWatcherInbox = CheckKillSwitch | RemoteKillSwitchChecked
"""What the KillSwitchWatcher accepts besides control messages."""

HealthReporterInbox = CheckKillSwitch | HealthReportDelivered
"""What the HealthReporter accepts besides control messages (its tick is the watchers' tick)."""
