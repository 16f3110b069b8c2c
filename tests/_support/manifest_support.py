"""Promotion-manifest entries for tests: a :class:`ManifestEntry` with only the fields a test
cares about (the rest filled as the judge would write a verdict with no stages)."""

from __future__ import annotations

from typing import Any

import msgspec

from aistock_actors.core.promotion.manifest import ManifestEntry

DEFAULT_TIME = "2025-01-01T00:00:00Z"


def entry(model_id: str, status: str = "rejected", **fields: Any) -> ManifestEntry:
    """``model_id``'s entry with ``status``; ``fields`` sets any other :class:`ManifestEntry`
    field (``id`` defaults to ``<model_id>@<time>``). Values are validated like a file's."""
    time = fields.pop("time", DEFAULT_TIME)
    raw: dict[str, Any] = {
        "id": fields.pop("id", f"{model_id}@{time}"), "model_id": model_id, "time": time,
        "status": status, "approved_by_gate": status == "approved", "stages_enabled": 5,
        "stages": [], "reasons": [], **fields,
    }
    return msgspec.convert(raw, ManifestEntry)


def as_json(entries: list[ManifestEntry]) -> list[dict[str, Any]]:
    """The entries as the JSON objects the file holds."""
    out: list[dict[str, Any]] = msgspec.to_builtins(entries)
    return out
