"""What the health report and ``/metrics`` take from disk rather than from the telemetry: the
active model (``models/active/model.json``) and the open and acknowledged alert counts."""

from __future__ import annotations

from typing import Any

from aistock_actors.config import LoadedConfig
from aistock_actors.errors import StateError
from aistock_actors.store.alerts import alert_counts
from aistock_actors.store.models import ModelStore


def disk_facts(loaded: LoadedConfig) -> dict[str, Any]:
    """``active_model`` (its id, or None), ``alerts_open`` and ``alerts_acknowledged`` (per
    severity); read-only, a few small files."""
    try:
        record = ModelStore(loaded.models_dir, None).active_record()
    except StateError:  # both pointer copies unreadable: the report says so, it does not fail
        active: str | None = "unreadable"
    else:
        active = record.model_id if record is not None else None
    open_, acked = alert_counts(loaded.state_dir / "alerts")
    return {"active_model": active, "alerts_open": open_, "alerts_acknowledged": acked}
