"""Logging set-up: human-readable text on a terminal, JSON lines in daemon mode.

Every record about an actor names it: an actor's thread is bound to its child name at start
(:func:`bind_actor`, called by the actor base), and the supervisor passes ``extra={"actor": ...}``
for the lines it writes about a child. The text format shows ``[actor]`` (else the thread's name),
the JSON format an ``actor`` key. Secrets are masked by the supervisor's redacting filter, which it
attaches to these handlers when it starts (daemon and ``--run-once`` alike).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading

from aistock_actors.runtime.redaction import escape_control

_bound = threading.local()


def bind_actor(name: str) -> None:
    """Name the actor whose thread this is; its log records then carry ``actor=name``."""
    _bound.name = name


def current_actor() -> str | None:
    """The actor bound to the calling thread, if any."""
    name = getattr(_bound, "name", None)
    return name if isinstance(name, str) else None


class ActorFilter(logging.Filter):
    """Sets ``record.actor`` from the thread's bound actor unless the caller passed one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "actor", None):
            name = current_actor()
            if name is not None:
                record.actor = name
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL [actor or thread] logger: message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s [%(where)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.where = getattr(record, "actor", None) or record.threadName
        return super().format(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """#17: control characters in a message are escaped, so no input forges a log line."""
        record.message = escape_control(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, thread, actor (when known), message."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        actor = getattr(record, "actor", None)
        if actor:
            payload["actor"] = actor
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment, so log lines printed while the
    progress display is live (it swaps ``sys.stderr``) appear above the bars, not through them."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once; actor threads are named ``{Class}-{n}`` by pykka."""
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ActorFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pykka").setLevel(logging.WARNING)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font-cache chatter on first use
