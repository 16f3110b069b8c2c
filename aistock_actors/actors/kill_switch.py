"""KillSwitchWatcher: looks at the kill-switch sources on every tick and trips the halt.

File part: ``state/KILL_SWITCH`` present means stop. On a trip the watcher sets the shared halt
flag itself, at once, before telling the supervisor, so no order can slip through while the
supervisor processes the event. (The supervisor also checks the file on its own every tick: the
file kill switch keeps working while this actor is down, hung or being restarted.)

Remote part (``headless.kill_switch_check_url``, every ``kill_switch_check_interval_seconds``):
the check runs on the network loop, never on this actor's thread; its outcome comes back as
:class:`~aistock_actors.messages.ops.RemoteKillSwitchChecked`. The contract:

- HTTP 200 with JSON ``{"kill_switch": true}`` → trip: the halt flag is set on the network loop
  the moment the answer is parsed, and the supervisor is told ``KillSwitchTripped(source=
  "remote")``; it latches the halt (``state/HALTED``, ``kill_switch_activated`` audit record,
  critical alert) until ``--unkill``;
- HTTP 200 with ``{"kill_switch": false}`` → keep running;
- anything else (other status, not JSON, missing or non-boolean key, timeout, connection
  refused) is a *failed check*: retried within the interval, then the warning alert
  ``kill_switch_check_failed: remote URL unreachable: <why>`` once when a streak of failed
  checks starts (the later ones are logged; ``kill_switch_check_recovered`` when it ends);
  trading continues. With
  ``headless.kill_switch_fail_closed_after: N``, N failed checks in a row trip (fail closed).
  The count survives restarts of this actor (``state/kill_switch_remote.json``).
- ``headless.kill_switch_token_env`` names an environment variable whose value is sent as
  ``Authorization: Bearer <token>`` (never read from the config file).

The watcher also announces a cleared halt (``kill_switch_deactivated`` or ``operator_resumed``,
info), which resolves the matching PagerDuty incidents.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.actors.base import WatchedActor
from aistock_actors.core.supervision import policy
from aistock_actors.messages.control import CheckKillSwitch, Halt, KillSwitchTripped, Resume
from aistock_actors.messages.ops import KillSwitchWatcherInbox, RemoteKillSwitchChecked
from aistock_actors.net.remote_kill import FAILED_MESSAGE, check_remote_kill_switch
from aistock_actors.runtime.cycle_run import utc_now_iso
from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.state import kill_switch_active, read_halt
from aistock_actors.store.state_file import load_state

log = logging.getLogger(__name__)

REMOTE_STATE_FILE = "kill_switch_remote.json"


class RemoteCheckState(msgspec.Struct, kw_only=True):
    """The remote check's persisted state (``state/kill_switch_remote.json``)."""

    consecutive_failures: int = 0
    last_checked_at: str | None = None
    last_ok_at: str | None = None
    last_error: str = ""


class KillSwitchWatcher(WatchedActor):
    """Polls the file kill switch on every tick and the remote URL every interval."""

    child_name = "kill_switch_watcher"
    inbox = KillSwitchWatcherInbox

    def load_state(self) -> None:
        self._reported = False
        headless = self.ctx.config.config.headless
        self._url = headless.kill_switch_check_url
        self._interval = headless.kill_switch_check_interval_seconds
        self._next_remote = 0.0  # the first tick checks at once
        self._in_flight: concurrent.futures.Future[Any] | None = None
        self._in_flight_since = 0.0
        self._remote = load_state(
            self._remote_path,
            RemoteCheckState,
            RemoteCheckState,
            self.ctx.alerts,
            actor=self.ctx.name,
        )
        halt = read_halt(self.ctx.config.state_dir)
        self._halt_kind = halt.kind if halt is not None else None
        if self._url and self.ctx.net is None:
            log.warning("remote kill switch configured but no network services: not polled")

    @property
    def _remote_path(self) -> Path:
        return self.ctx.config.state_dir / REMOTE_STATE_FILE

    def handle_other(self, message: Any) -> None:
        match message:
            case CheckKillSwitch():
                self.check()
            case RemoteKillSwitchChecked():
                self.on_remote_checked(message)
            case _:
                super().handle_other(message)

    # --- file and schedule ---------------------------------------------------------------------

    def check(self) -> None:
        """Trip when the file exists (report once per activation); poll the remote when due."""
        if kill_switch_active(self.ctx.config.state_dir):
            self.trip("file", "state/KILL_SWITCH present")
        self._poll_remote_if_due()

    def trip(self, source: str, detail: str) -> None:
        """Set the shared halt flag now, then tell the supervisor (once per activation)."""
        self.ctx.halt_flag.set()
        if self._reported:
            return
        self._reported = True
        self.ctx.report(
            KillSwitchTripped(
                source=source, detail=detail, actor=self.ctx.name, generation=self.ctx.generation
            )
        )

    # --- remote --------------------------------------------------------------------------------

    def _poll_remote_if_due(self) -> None:
        net = self.ctx.net
        if not self._url or net is None or not net.running:
            return
        now = self.ctx.clock.monotonic()
        if self._in_flight is not None:
            # A check is bounded by its policy; this only rescues a lost callback.
            if now - self._in_flight_since < 2 * self._interval + 5.0:
                return
            self._in_flight.cancel()
            self._in_flight = None
        if now < self._next_remote:
            return
        self._next_remote = now + self._interval
        headers: dict[str, str] = {}
        token_env = self.ctx.config.config.headless.kill_switch_token_env
        if token_env:
            token = net.environ.get(token_env, "")
            if not token:
                self.on_remote_checked(
                    RemoteKillSwitchChecked(
                        active=None,
                        attempts=0,
                        error=f"environment variable {token_env} is not set",
                    )
                )
                return
            headers["Authorization"] = f"Bearer {token}"
        retry = net.retry.within(
            self._interval,
            attempt_timeout=self.ctx.config.config.headless.kill_switch_check_timeout_seconds,
        )
        self._in_flight_since = now
        self._in_flight = net.tell_when_done(
            check_remote_kill_switch(
                net.session,
                self._url,
                policy=retry,
                headers=headers,
                on_active=self.ctx.halt_flag.set,
                redact=net.redactor.text,
            ),
            self.actor_ref,
            lambda reason: RemoteKillSwitchChecked(active=None, attempts=0, error=reason),
        )

    def on_remote_checked(self, result: RemoteKillSwitchChecked) -> None:
        """Apply one check's outcome: trip, count a failure (maybe fail closed), or recover."""
        self._in_flight = None
        state = self._remote
        state.last_checked_at = utc_now_iso(self.ctx.clock)
        if result.active is None:
            state.consecutive_failures += 1
            state.last_error = result.error
            self._save_remote()
            if state.consecutive_failures == 1:  # one alert when the streak starts, not per check
                self._alert_failed(result)
            else:
                log.warning("remote kill-switch check failed again (%d in a row): %s",
                            state.consecutive_failures, result.error)
            limit = self.ctx.config.config.headless.kill_switch_fail_closed_after
            if limit is not None and state.consecutive_failures >= limit:
                self.trip(
                    "remote",
                    f"fail-closed: {state.consecutive_failures} failed remote checks in a row",
                )
            return
        recovered = state.consecutive_failures
        state.consecutive_failures = 0
        state.last_ok_at = state.last_checked_at
        state.last_error = ""
        self._save_remote()
        if recovered:
            self.ctx.alerts.raise_alert(
                "info",
                "kill_switch_check_recovered",
                f"remote kill switch reachable again after {recovered} failed check(s)",
                actor=self.ctx.name,
            )
        if result.active:
            self.trip("remote", "the remote kill switch says stop")

    def _alert_failed(self, result: RemoteKillSwitchChecked) -> None:
        limit = self.ctx.config.config.headless.kill_switch_fail_closed_after
        self.ctx.alerts.raise_alert(
            "warning",
            "kill_switch_check_failed",
            f"{FAILED_MESSAGE}: {result.error}; trading continues (the file kill switch "
            "still works)",
            actor=self.ctx.name,
            details={
                "error": result.error,
                "attempts": result.attempts,
                "consecutive_failures": self._remote.consecutive_failures,
                "fail_closed_after": limit,
            },
        )

    def _save_remote(self) -> None:
        if self.ctx.net is not None:
            self.ctx.net.metrics.remote_kill_failures.set(self._remote.consecutive_failures)
        try:
            atomic_write_json(self._remote_path, self._remote, keep_backup=False)
        except OSError as exc:  # the count is advisory; a full disk must not stop the watcher
            log.error("cannot save %s: %s", REMOTE_STATE_FILE, exc)

    # --- halt and resume -------------------------------------------------------------------

    def on_halt(self, message: Halt) -> None:
        self._halt_kind = message.kind

    def on_resume(self, message: Resume) -> None:
        self._reported = False
        self._next_remote = 0.0  # ask the remote at once: it may still say stop
        kind, self._halt_kind = self._halt_kind, None
        with contextlib.suppress(OSError):
            if kind == "kill_switch":
                self.ctx.alerts.raise_alert(
                    "info",
                    policy.KILL_SWITCH_DEACTIVATED,
                    "kill switch deactivated by the operator; the autopilot resumes",
                    actor=self.ctx.name,
                )
            elif kind is not None:
                self.ctx.alerts.raise_alert(
                    "info",
                    policy.OPERATOR_RESUMED,
                    f"halt ({kind}) cleared by the operator; the autopilot resumes",
                    actor=self.ctx.name,
                )
