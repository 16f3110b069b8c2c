"""The count of every candidate ever backtested on this state directory (for the deflated Sharpe).

``state/promotion/trials.json`` (atomic, with a ``.bak``). Selection bias grows with every trial,
across cycles too, so the count only ever grows; a lost file restarts it with a critical alert
(``state_file_unrecoverable``), never silently.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from aistock_actors.store.alerts import AlertSink
from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.state_file import load_state

RECENT_TRIALS = 50
"""How many of the newest counted candidates' ids are kept (a re-run's candidate is among them)."""


class TrialCount(msgspec.Struct, kw_only=True):
    """The persisted count."""

    trials: int = 0
    recent: list[str] = []
    """Ids of the newest counted candidates: a candidate backtested again after a crash or a
    halt interrupted its cycle (the same model id, retrained on the same bars) counts once."""


class TrialStore:
    """Reads and grows ``state/promotion/trials.json``."""

    def __init__(self, state_dir: Path, alerts: AlertSink | None) -> None:
        self.path = Path(state_dir) / "promotion" / "trials.json"
        self.alerts = alerts

    def count(self) -> int:
        """Trials recorded so far (0 on a fresh state directory)."""
        return load_state(self.path, TrialCount, TrialCount, self.alerts, actor="backtester").trials

    def add(self, n: int, candidate: str | None = None) -> int:
        """Record ``n`` more trials; return the new total (the count the candidates are judged
        with). ``candidate`` (a model id) already counted is not counted again. Raises
        ``ValueError`` for ``n < 1`` and ``OSError`` if the file cannot be written."""
        if n < 1:
            raise ValueError(f"trials to add must be >= 1, got {n}")
        current = load_state(self.path, TrialCount, TrialCount, self.alerts, actor="backtester")
        if candidate is not None and candidate in current.recent:
            return current.trials
        recent = [*current.recent, candidate][-RECENT_TRIALS:] if candidate else current.recent
        total = current.trials + n
        atomic_write_json(self.path, TrialCount(trials=total, recent=recent))
        return total
