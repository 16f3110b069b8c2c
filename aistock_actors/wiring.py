"""Which actors exist and which cycle step each performs: the supervisor's child specs.

Children start in this order and stop in reverse. A cycle step with no child here is reported
as "not built" in ``--status`` and in the cycle summary; nothing pretends to do it.
"""

from __future__ import annotations

from aistock_actors.actors.data_ingestor import DataIngestor
from aistock_actors.actors.kill_switch import KillSwitchWatcher
from aistock_actors.messages.data import IngestBars
from aistock_actors.supervisor import ChildSpec


def default_specs() -> list[ChildSpec]:
    """The production children, in start order."""
    return [
        ChildSpec(name="kill_switch_watcher", actor_class=KillSwitchWatcher),
        ChildSpec(
            name="data_ingestor",
            actor_class=DataIngestor,
            step="ingest",
            make_request=lambda request_id, _cycle: IngestBars(request_id=request_id),
        ),
    ]


def built_steps() -> set[str]:
    """Cycle steps that have an actor."""
    return {spec.step for spec in default_specs() if spec.step is not None}
