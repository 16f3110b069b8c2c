"""``--report``: one self-contained HTML file about what the autopilot has been doing.

Sections: a summary (the ``--status`` facts), paper equity and drawdown, the active model's
out-of-sample backtest equity and drawdown (the curve its verdict stored) with every verdict's
backtest metrics, the promotion history with every stage's value against its threshold, the
risk limits' history against the hard ceilings, the market-regime timeline of the stored bars,
and the cost calibration (predicted against realised bps of every fill). Plots are PNGs
embedded as base64 ``data:`` URIs and the CSS is inline: the file opens offline, mails as one
attachment, and loads nothing from the network. Reading is read-only; an empty or damaged state
gives "No data yet" / "Unreadable" panels, never a crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aistock_actors.cli.report.data import collect
from aistock_actors.cli.report.page import SECTIONS, Rendered, page, replay
from aistock_actors.config import LoadedConfig
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.store.atomic import atomic_write_bytes

__all__ = ["ReportFile", "build_report", "write_report"]


@dataclass(frozen=True)
class ReportFile:
    """A written report."""

    path: Path
    size_bytes: int
    sections: int
    sections_with_data: int


def build_report(loaded: LoadedConfig, now: datetime | None = None) -> tuple[str, list[Rendered]]:
    """The report's HTML and its rendered sections."""
    data = collect(loaded, now or SYSTEM_CLOCK.now())
    sections = [render(data) for render in SECTIONS]
    if data.replay.state is not None or data.replay.problem:  # a replay's state directory
        sections.insert(1, replay(data))
    return page(data, sections), sections


def write_report(loaded: LoadedConfig, out: Path) -> ReportFile:
    """Build the report and write it to ``out`` atomically (a reader never sees half a file)."""
    text, sections = build_report(loaded)
    data = text.encode("utf-8")
    path = Path(out).resolve()
    atomic_write_bytes(path, data, keep_backup=False)
    os.chmod(path, 0o644)  # a report is for sharing: the temp file's 0600 would be in the way
    return ReportFile(
        path=path,
        size_bytes=len(data),
        sections=len(sections),
        sections_with_data=sum(s.has_data for s in sections),
    )
