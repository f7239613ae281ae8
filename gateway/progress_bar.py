"""The rich progress bar behind `gateway.progress.terminal_progress` (terminals only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Items per second (rich's own speed column counts bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self._unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.1f} {self._unit}/s")


class _RichProgress:
    def __init__(self, progress: Progress, description: str) -> None:
        self._progress = progress
        self._description = description
        self._task = progress.add_task(description, total=None)

    def set_total(self, total: int | None) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, count: int = 1, *, label: str | None = None) -> None:
        description = f"{self._description} {label}" if label else self._description
        self._progress.update(self._task, advance=count, description=description)


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[_RichProgress]:
    """A rich progress bar on stderr, counting `unit`s."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TaskProgressColumn(),
        _RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        yield _RichProgress(progress, description)
