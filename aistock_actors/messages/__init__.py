"""The typed protocol between actors: frozen, tagged msgspec Structs only, no behaviour.

Commands are imperative (``IngestBars``), events past tense (``BarsIngested``). Every message
that is a step of a cycle carries ``request_id`` so the supervisor can match the reply, and every
reply carries the ``generation`` of the actor instance that produced it so stale reports from an
abandoned instance are ignored.
"""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """Base of every message; the tag defaults to the class name."""


class Request(Message, frozen=True, kw_only=True):
    """A command that expects exactly one reply to the supervisor."""

    request_id: str
    """Correlates the reply; ``<cycle id>:<step>``."""


class Reply(Message, frozen=True, kw_only=True):
    """A reply to a :class:`Request`, told to the supervisor's inbox."""

    request_id: str
    """The ``request_id`` of the request this answers."""
    actor: str = ""
    """Name of the child that replied (filled in by the actor base)."""
    generation: int = 0
    """Generation of the replying actor instance (filled in by the actor base)."""


class StepFailed(Reply, frozen=True, kw_only=True):
    """An expected, reported failure of a step (bad data, no model, ...)."""

    reason: str
    """Short machine-readable reason, e.g. ``no_valid_data``."""
    message: str = ""
    """Human-readable explanation for the operator."""
