"""KillSwitchWatcher: looks at the kill-switch sources on every tick and trips the halt.

File part: ``state/KILL_SWITCH`` present means stop. On a trip the watcher sets the shared halt
flag itself, at once, before telling the supervisor, so no order can slip through while the
supervisor processes the event. (The supervisor also checks the file on its own every tick: the
file kill switch keeps working while this actor is down or being restarted.)
"""

from __future__ import annotations

from typing import Any

from aistock_actors.actors.base import SupervisedActor
from aistock_actors.messages.control import CheckKillSwitch, KillSwitchTripped, Resume
from aistock_actors.store.state import kill_switch_active

KillSwitchWatcherInbox = CheckKillSwitch
"""What the KillSwitchWatcher accepts besides control messages."""


class KillSwitchWatcher(SupervisedActor):
    """Polls the file kill switch (the remote URL comes with the operations issue)."""

    child_name = "kill_switch_watcher"

    def load_state(self) -> None:
        self._reported = False

    def handle_other(self, message: Any) -> None:
        match message:
            case CheckKillSwitch():
                self.check()
            case _:
                super().handle_other(message)

    def check(self) -> None:
        """Trip when the file exists; report once per activation."""
        if kill_switch_active(self.ctx.config.state_dir):
            self.ctx.halt_flag.set()
            if not self._reported:
                self._reported = True
                self.ctx.report(
                    KillSwitchTripped(
                        source="file",
                        detail="state/KILL_SWITCH present",
                        actor=self.ctx.name,
                        generation=self.ctx.generation,
                    )
                )

    def on_resume(self, message: Resume) -> None:
        self._reported = False
