"""Progress of long CLI commands (sync, import, export): a rich progress bar with counts,
rate and ETA when stderr is a terminal, nothing otherwise (scripts and logs stay clean)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

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


class ProgressReporter(Protocol):
    """What a long operation tells about itself; the total may come late or never."""

    def set_total(self, total: int | None) -> None: ...

    def advance(self, count: int = 1, *, label: str | None = None) -> None: ...


class NoProgress:
    def set_total(self, total: int | None) -> None:
        del total

    def advance(self, count: int = 1, *, label: str | None = None) -> None:
        del count, label


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
def terminal_progress(description: str, unit: str) -> Iterator[ProgressReporter]:
    """A progress bar on stderr if it is a terminal, else a reporter that does nothing."""
    if not sys.stderr.isatty():
        yield NoProgress()
        return
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
