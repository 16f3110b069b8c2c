"""The supervisor's writes to a state directory that may refuse them (read-only or full).

A refused write does not end the process: :class:`StateWriter` logs it at CRITICAL, tells the
supervisor (which halts, kind ``resource``, reason ``state_write_failed``) and keeps what is
missing — the parts of the halt not yet on disk, audit records in order, ``supervisor.json`` —
to write again every ``WRITE_RETRY_SECONDS`` until the disk takes writes again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aistock_actors.core.supervision.policy import AUDIT_BACKLOG_MAX, WRITE_RETRY_SECONDS
from aistock_actors.store.alerts import AlertSink, Severity
from aistock_actors.store.audit import AuditLog
from aistock_actors.store.state import HaltState, SupervisorState, save_supervisor_state, write_halt

log = logging.getLogger("aistock_actors.runtime.supervisor")

WriteFailed = Callable[[str, OSError], None]
"""Called with the file and the error when a write is refused (the supervisor halts)."""


class StateWriter:
    """Writes ``supervisor.json``, the audit log, alerts and the halt; keeps refused writes."""

    def __init__(
        self,
        state_dir: Path,
        audit: AuditLog,
        alerts: AlertSink,
        clock: Callable[[], float],
        on_failure: WriteFailed,
    ) -> None:
        self.state_dir = state_dir
        self.audit_log = audit
        self.alerts = alerts
        self.clock = clock
        self.on_failure = on_failure
        self.halt_unwritten: list[str] = []
        """Parts of the halt not yet written: ``file`` (state/HALTED), ``alert``."""
        self.audit_backlog: list[tuple[str, str, dict[str, Any]]] = []
        self.state_unsaved = False
        self._halt_alert_sent = False
        self._next_retry = 0.0

    @property
    def pending(self) -> bool:
        """Whether some write still waits for the disk."""
        return bool(self.halt_unwritten or self.audit_backlog or self.state_unsaved)

    def failed(self, what: str, exc: OSError) -> None:
        """A write failed: CRITICAL log, retry later, tell the supervisor."""
        log.critical("cannot write %s: %s", what, exc)
        self._next_retry = self.clock() + WRITE_RETRY_SECONDS
        self.on_failure(what, exc)

    def save_state(self, state: SupervisorState) -> None:
        """Persist ``supervisor.json``; on failure halt and retry later."""
        try:
            save_supervisor_state(self.state_dir, state)
        except OSError as exc:
            self.state_unsaved = True
            self.failed("state/supervisor.json", exc)
        else:
            self.state_unsaved = False

    def audit(self, action: str, actor: str, details: dict[str, Any]) -> None:
        """Append an audit record; records the log refuses wait in order for a retry."""
        self.audit_backlog.append((action, actor, details))
        if len(self.audit_backlog) > AUDIT_BACKLOG_MAX:
            dropped = self.audit_backlog.pop(0)
            log.critical("audit backlog full: dropped %s %s", dropped[0], dropped[2])
        try:
            self._flush_audit()
        except OSError as exc:
            self.failed("state/audit/log.jsonl", exc)

    def _flush_audit(self) -> None:
        while self.audit_backlog:
            action, actor, details = self.audit_backlog[0]
            self.audit_log.append(action, actor, details)
            self.audit_backlog.pop(0)

    def alert(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        actor: str = "supervisor",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Raise an alert; an alert file that cannot be written is logged at CRITICAL (and still
        reaches the webhooks) by the sink, and halts."""
        try:
            self.alerts.raise_alert(severity, code, message, actor=actor, details=details)
        except OSError as exc:
            self.failed("state/alerts", exc)

    def begin_halt(self) -> None:
        """A new halt: both of its parts are still to be written."""
        self.halt_unwritten, self._halt_alert_sent = ["file", "alert"], False

    def write_halt_part(self, halt: HaltState | None, part: str) -> None:
        """Write one part of the halt (``file``: state/HALTED, ``alert``: its critical alert)."""
        if halt is None or part not in self.halt_unwritten:
            return
        try:
            if part == "file":
                write_halt(self.state_dir, halt)
            else:  # the first attempt reaches the webhooks even if the file cannot be written
                notify, self._halt_alert_sent = not self._halt_alert_sent, True
                self.alerts.raise_alert(
                    "critical", halt.reason, halt.message, details=halt.details, notify=notify
                )
        except OSError as exc:
            log.critical("cannot write the halt (%s): %s; it holds in memory", part, exc)
            self._next_retry = self.clock() + WRITE_RETRY_SECONDS
            return
        self.halt_unwritten.remove(part)

    def retry(self, halt: HaltState | None, state: SupervisorState, *, force: bool = False) -> None:
        """Write what the state directory refused earlier: the halt first, then the rest."""
        if not self.pending:
            return
        if not force and self.clock() < self._next_retry:
            return
        self._next_retry = self.clock() + WRITE_RETRY_SECONDS
        self.write_halt_part(halt, "file")
        if "file" in self.halt_unwritten:
            return
        try:
            self._flush_audit()
        except OSError as exc:
            log.critical("audit log still not writable: %s", exc)
            return
        self.write_halt_part(halt, "alert")
        if self.state_unsaved:
            self.save_state(state)
        if not self.pending:
            log.warning("state directory writable again: halt and pending records written")

    def log_unwritten(self) -> None:
        """At shutdown: say at CRITICAL what the state directory never took."""
        if self.pending:
            log.critical(
                "stopping with writes the state directory refused: halt parts %s, %d audit "
                "record(s), supervisor.json %s",
                self.halt_unwritten or "none",
                len(self.audit_backlog),
                "unsaved" if self.state_unsaved else "saved",
            )
