"""Which model artifacts the ``models`` folder keeps, pure.

Always kept: the active model, every model the manifest has approved, left pending or held, or
rolled back (a rollback may return to an approved one; ``--approve`` takes a pending or held
one), every model the activation history names, and the newest candidate (the retraining
cadence counts from it). Of the other candidates (rejected, only recorded, or never judged
because their backtest failed), the newest ``models.keep_rejected`` are kept and the older ones
pruned; :func:`models_to_prune` runs before a new candidate is stored, when no candidate of the
running cycle exists yet.

A model no verdict names whose cycle was interrupted (a crash or a stop before its judge step,
or a halt) is an orphan: :func:`orphans` names them at start-up, when no cycle runs, so the
cycle that is run again trains it again (a replay then gets the same candidates as one that
was never interrupted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from aistock_actors.core.promotion.manifest import ManifestEntry

PROTECTED_STATUSES = frozenset({"approved", "pending", "held", "rolled_back"})
"""Verdict statuses whose model is never pruned."""
INTERRUPTED_OUTCOMES = frozenset({"halted", "aborted"})
"""Outcomes of a finished cycle that did not run to its end."""
_CANDIDATE_ID = re.compile(r"m-(c\d{8}T\d{6}Z-(\d+))")
"""``m-<cycle id>``: a candidate names the cycle that trained it (and its sequence number)."""


def judged_models(manifest: Iterable[ManifestEntry]) -> dict[str, set[str]]:
    """``{model id: the statuses of its verdicts}``."""
    found: dict[str, set[str]] = {}
    for entry in manifest:
        found.setdefault(entry.model_id, set()).add(entry.status)
    return found


def models_to_prune(
    stored: Sequence[str],
    manifest: Iterable[ManifestEntry],
    *,
    keep_rejected: int,
    active: str | None,
    activated: Iterable[str] = (),
    newest: str | None = None,
) -> list[str]:
    """Unprotected candidates beyond the newest ``keep_rejected`` (oldest first; the newest
    candidate is never returned). ``stored`` lists the stored model ids oldest first."""
    verdicts = judged_models(manifest)
    keep = {active, *activated}
    others = [
        model_id
        for model_id in stored
        if model_id not in keep and not verdicts.get(model_id, set()) & PROTECTED_STATUSES
    ]
    return [m for m in others[: max(0, len(others) - keep_rejected)] if m != newest]


def interrupted(
    model_id: str, cycles_total: int, last_cycle: tuple[str, str] | None
) -> bool:
    """Whether the cycle that trained ``model_id`` ended before its end: never counted (a crash)
    or the last cycle and halted or aborted. A model not named ``m-<cycle id>`` is not judged."""
    match = _CANDIDATE_ID.fullmatch(model_id)
    if match is None:
        return False
    if int(match.group(2)) > cycles_total:
        return True
    return last_cycle is not None and last_cycle[0] == match.group(1) and (
        last_cycle[1] in INTERRUPTED_OUTCOMES
    )


def orphans(
    stored: Iterable[str],
    manifest: Iterable[ManifestEntry],
    *,
    active: str | None,
    activated: Iterable[str] = (),
    cycles_total: int,
    last_cycle: tuple[str, str] | None = None,
    unreadable: Iterable[str] = (),
) -> list[str]:
    """Stored models no verdict names, never active, left by an interrupted cycle; and the
    ``unreadable`` ones (an artifact whose write was cut short: never usable)."""
    verdicts = judged_models(manifest)
    keep = {active, *activated}
    broken = set(unreadable)
    return [
        model_id
        for model_id in stored
        if model_id not in keep
        and model_id not in verdicts
        and (model_id in broken or interrupted(model_id, cycles_total, last_cycle))
    ]
