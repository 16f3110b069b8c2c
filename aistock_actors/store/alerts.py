"""Alerts: one JSON file per alert under ``state/alerts/<severity>/``.

Severities are ``info``, ``warning``, ``error`` and ``critical``. File names sort by time
(``20260113T120000.123456Z_<code>_<n>.json``) so the runbook's ``ls -t`` and ``ls | tail`` work.
Each severity keeps its newest :data:`ALERTS_KEPT` files (a daemon raising an info alert every
cycle would otherwise fill the folder for ever): every :data:`PRUNE_EVERY` alerts a sink writes,
the oldest beyond that are deleted (:meth:`AlertSink.prune`; the audit log keeps the history).
Listeners (webhooks, metrics) are called after the file is on disk; a failing listener never
loses the alert file nor reaches the caller. With ``redact`` (see
``aistock_actors/runtime/redaction.py``)
secrets are masked in the message and details before the alert is written or passed on.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from aistock_actors.runtime.clock import SYSTEM_CLOCK, Clock, market_iso
from aistock_actors.store.atomic import atomic_write_json

Severity = Literal["info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error", "critical")

log = logging.getLogger(__name__)

ALERTS_KEPT: dict[Severity, int] = {"info": 1000, "warning": 1000, "error": 5000, "critical": 5000}
"""How many alert files each severity keeps (the newest)."""
PRUNE_EVERY = 100
"""A sink prunes after this many alerts (so pruning costs O(1) per alert on average)."""


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    """One alert as written to disk."""

    ts: str
    """Wall time of the alert."""
    as_of: str | None = None
    """The market time while a replay drives it (:meth:`Clock.is_simulated`), else null."""
    severity: Severity
    code: str
    message: str
    actor: str
    details: dict[str, Any] = {}


AlertListener = Callable[[Alert], None]


class AlertSink:
    """Writes alert files and notifies listeners."""

    def __init__(
        self,
        root: Path,
        listeners: list[AlertListener] | None = None,
        *,
        redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.root = Path(root)
        self.clock = clock
        self._listeners = list(listeners or [])
        self._redact = redact
        self._counter = itertools.count()
        self._lock = threading.Lock()
        for severity in SEVERITIES:
            (self.root / severity).mkdir(parents=True, exist_ok=True)

    def add_listener(self, listener: AlertListener) -> None:
        """Call ``listener`` for every alert raised from now on."""
        self._listeners.append(listener)

    def raise_alert(
        self,
        severity: Severity,
        code: str,
        message: str,
        *,
        actor: str = "supervisor",
        details: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> Path:
        """Write the alert file, then notify listeners (unless ``notify`` is False); return the
        file's path.

        If the file cannot be written (read-only or full disk) the alert is logged at CRITICAL
        on stderr and still handed to the listeners (webhooks), then the ``OSError`` is raised.
        """
        now = self.clock.now()
        if self._redact is not None:
            masked = self._redact({"message": message, "details": dict(details or {})})
            message, details = masked["message"], masked["details"]
        alert = Alert(
            ts=now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            as_of=market_iso(self.clock),
            severity=severity,
            code=code,
            message=message,
            actor=actor,
            details=dict(details or {}),
        )
        with self._lock:
            seq = next(self._counter)
        if seq % PRUNE_EVERY == PRUNE_EVERY - 1:
            self.prune()
        safe_code = "".join(c if c.isalnum() or c in "-_" else "_" for c in code)[:60]
        name = f"{now.strftime('%Y%m%dT%H%M%S.%f')}Z_{safe_code}_{os.getpid()}-{seq}.json"
        path = self.root / severity / name
        try:
            atomic_write_json(path, alert, keep_backup=False)
        except OSError as exc:
            log.critical(
                "alert NOT written (%s): %s [%s] %s",
                exc,
                severity,
                code,
                message,
                extra={"actor": actor},
            )
            if notify:
                self._notify(alert)
            raise
        level = {"info": logging.INFO, "warning": logging.WARNING}.get(severity, logging.ERROR)
        log.log(level, "alert %s [%s] %s", severity, code, message, extra={"actor": actor})
        if notify:
            self._notify(alert)
        return path

    def prune(self) -> int:
        """Delete the oldest alert files beyond :data:`ALERTS_KEPT` of each severity; return how
        many. A file that cannot be deleted is left for the next prune."""
        removed = 0
        for severity, kept in ALERTS_KEPT.items():
            files = list_alerts(self.root, severity)
            for path in files[: max(0, len(files) - kept)]:
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("alert file %s not pruned: %s", path.name, exc)
        return removed

    def _notify(self, alert: Alert) -> None:
        for listener in self._listeners:
            try:
                listener(alert)
            except Exception:  # a broken listener must never lose or block an alert
                log.exception("alert listener failed for %s", alert.code)


def list_alerts(root: Path, severity: Severity) -> list[Path]:
    """Alert files of one severity, oldest first."""
    folder = Path(root) / severity
    return sorted(folder.glob("*.json")) if folder.exists() else []


# --- acknowledgement ---------------------------------------------------------------------------

ACK_FILE = "acknowledged.json"
"""``state/alerts/acknowledged.json``: which alert files an operator acknowledged (the alert
files themselves are never moved or rewritten, so ``ls state/alerts/critical/`` still lists
every alert)."""


class AckRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One acknowledgement: who and when."""

    by: str
    """``operator`` (``--ack``) or ``web`` (the console)."""
    at: str


class AckState(msgspec.Struct, kw_only=True):
    """Every acknowledged alert, by alert id (the alert file's name without ``.json``)."""

    acknowledged: dict[str, AckRecord] = {}


def alert_id(path: Path) -> str:
    """The id of the alert stored at ``path`` (its file name without ``.json``)."""
    return Path(path).stem


def load_acks(root: Path) -> AckState:
    """The acknowledgements (with ``.bak`` recovery; none when the file is missing)."""
    from aistock_actors.store.state_file import load_state

    return load_state(Path(root) / ACK_FILE, AckState, AckState, None, actor="alerts")


def alert_counts(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """``(open, acknowledged)`` alert counts per severity."""
    acked = load_acks(root).acknowledged
    open_: dict[str, int] = {}
    done: dict[str, int] = {}
    for severity in SEVERITIES:
        ids = [alert_id(p) for p in list_alerts(root, severity)]
        done[severity] = sum(1 for i in ids if i in acked)
        open_[severity] = len(ids) - done[severity]
    return open_, done


def acknowledge(root: Path, target: str, by: str, clock: Clock = SYSTEM_CLOCK) -> list[str]:
    """Acknowledge alert ``target`` (an id) or every open alert (``all``); return the ids newly
    acknowledged. Raises ``KeyError`` naming an unknown id (nothing is written then)."""
    root = Path(root)
    state = load_acks(root)
    known = {alert_id(p) for s in SEVERITIES for p in list_alerts(root, s)}
    if target == "all":
        wanted = sorted(known - state.acknowledged.keys())
    elif target in known:
        wanted = [] if target in state.acknowledged else [target]
    else:
        raise KeyError(f"no alert with id {target!r} under {root} (see --status or the console)")
    if wanted:
        at = clock.now().isoformat(timespec="seconds").replace("+00:00", "Z")
        record = AckRecord(by=by, at=at)
        # ids of alert files since deleted by hand are dropped, so the file stays small
        merged = {k: v for k, v in state.acknowledged.items() if k in known}
        merged.update(dict.fromkeys(wanted, record))
        atomic_write_json(root / ACK_FILE, AckState(acknowledged=merged))
    return wanted
