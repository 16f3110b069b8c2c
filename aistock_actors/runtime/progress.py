"""Progress of long CLI work: a seam the actors call, silent unless the CLI switches it on.

The ingestor (per CSV file), the trainer (one fit) and the backtester (its walk-forward jobs) open
a :func:`task` and advance it. Nothing is shown unless :func:`enable` was called, which the CLI
does only for ``--run-once`` attached to a terminal (:func:`should_enable`): the daemon, cron, CI
and any pipe stay silent, and a disabled call costs one global read. Actors run in their own
threads, so every call is thread-safe (rich's ``Progress`` takes its own lock).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # rich loads only when progress is really shown
    from rich.progress import Progress, TaskID
    from rich.progress import Task as RichTask
    from rich.text import Text

T = TypeVar("T")

_lock = threading.Lock()
_progress: Progress | None = None


class Task(Protocol):
    """One unit of long work as the caller sees it."""

    def advance(self, steps: float = 1.0) -> None:
        """Count ``steps`` more items as done."""

    def note(self, text: str) -> None:
        """Show ``text`` (e.g. the file being read) next to the bar."""


class _NullTask:
    """What every caller gets while progress is off: does nothing."""

    def advance(self, steps: float = 1.0) -> None:
        return None

    def note(self, text: str) -> None:
        return None


NULL_TASK: Task = _NullTask()


class _ShownTask:
    """A task bound to the live display."""

    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._id = task_id

    def advance(self, steps: float = 1.0) -> None:
        self._progress.advance(self._id, steps)

    def note(self, text: str) -> None:
        self._progress.update(self._id, note=text, refresh=True)


def should_enable(stream: IO[str], *, daemon: bool = False) -> bool:
    """Whether to show progress on ``stream``: never in daemon mode, only on a terminal."""
    if daemon:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def enabled() -> bool:
    """Whether progress is being shown."""
    return _progress is not None


def enable(stream: IO[str] | None = None) -> None:
    """Start the live display on ``stream`` (default ``sys.stderr``); idempotent.

    Output written to ``sys.stderr`` meanwhile (log lines) is printed above the bars; stdout is
    left alone, so a redirected cycle summary stays intact.
    """
    global _progress
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with _lock:
        if _progress is not None:
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<9}"),
            BarColumn(bar_width=30),
            _count_column(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}", style="dim"),
            console=Console(file=stream or sys.stderr),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        progress.start()
        _progress = progress


def disable() -> None:
    """Stop the live display (the bars disappear; the cycle summary follows)."""
    global _progress
    with _lock:
        progress, _progress = _progress, None
    if progress is not None:
        progress.stop()


@contextmanager
def task(description: str, total: float | None = None, unit: str = "") -> Iterator[Task]:
    """A task shown while the block runs; ``total=None`` shows a spinner and the elapsed time."""
    progress = _progress
    if progress is None:
        yield NULL_TASK
        return
    task_id = progress.add_task(description, total=total, unit=unit, note="")
    progress.refresh()  # drawn at once: a short task may end before the next periodic refresh
    try:
        yield _ShownTask(progress, task_id)
    finally:
        progress.remove_task(task_id)


def track(items: Sequence[T], description: str, unit: str = "") -> Iterator[T]:
    """Yield ``items`` one by one, advancing a task after each."""
    with task(description, total=len(items), unit=unit) as shown:
        for item in items:
            yield item
            shown.advance()


def tracked_mapper(
    mapper: Callable[..., list[Any]], description: str, unit: str = "jobs"
) -> Callable[..., list[Any]]:
    """Wrap a pipeline ``mapper`` so each batch of jobs (walk-forward folds) is shown as a task.

    The jobs run in worker processes that cannot report back one by one, so the task completes
    when the batch does; meanwhile it shows how many jobs are running and for how long.
    """

    def shown(fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> list[Any]:
        with task(description, total=len(jobs), unit=unit) as t:
            t.note(f"{len(jobs)} {unit} running")
            results = mapper(fn, jobs)
            t.advance(len(jobs))
        return results

    return shown


def _count_text(completed: float, total: float | None, unit: str) -> str:
    """``3/20 files`` for a counted task, ``""`` for an open-ended one."""
    if total is None:
        return ""
    return f"{completed:.0f}/{total:.0f} {unit}".rstrip()


def _count_column() -> Any:
    """A rich column showing ``done/total unit`` (rich's own shows ``0/?`` for open tasks)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        def render(self, task: RichTask) -> Text:
            return Text(_count_text(task.completed, task.total, str(task.fields.get("unit", ""))))

    return CountColumn()
