"""Risk messages: the risk step of a cycle (the RiskGovernor adapts the limits in force)."""

from __future__ import annotations

from aistock_actors.core.risk.policy import RiskLimits
from aistock_actors.messages import Reply, Request


class AssessRisk(Request, frozen=True, kw_only=True):
    """Judge the paper portfolio's recent performance and set the limits for this cycle."""

    cycle_id: str
    """The supervisor's cycle id (for the audit log)."""


class RiskAssessed(Reply, frozen=True, kw_only=True):
    """The limits in force after the risk step (persisted in ``state/risk/limits.json``)."""

    outcome: str
    """``tightened``, ``expanded``, ``pending``, ``rejected``, ``unchanged`` or
    ``no_new_observations``."""
    reason: str
    """The policy's summary reason, e.g. ``tightened_on_poor_performance``."""
    max_position_fraction: float
    """The adaptive position limit in force (what ``--status`` compares with the ceiling)."""
    limits: RiskLimits
    """The adaptive limits in force."""
    effective_limits: RiskLimits
    """What trading uses: ``limits`` after the regime allocator (equal in shadow mode)."""
    regime: str
    """Market regime of the newest bar (``core.regimes`` names)."""
    allocator_mode: str
    pending_id: str = ""
    """Id of an expansion waiting for ``--approve`` ("" if none)."""
    adjustments: int = 0
    """How many times the limits in force changed in this step."""


RiskGovernorInbox = AssessRisk
"""What the RiskGovernor accepts besides control messages."""
