"""Progress of long CLI commands (sync, import, export): a rich progress bar with counts,
rate and ETA when stderr is a terminal, nothing otherwise (scripts and logs stay clean).

rich is imported only for a terminal (`gateway/progress_bar.py`): `gateway sync` from cron or
a script would otherwise spend ~0.1 s of its start-up importing it (issue 17).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class ProgressReporter(Protocol):
    """What a long operation tells about itself; the total may come late or never."""

    def set_total(self, total: int | None) -> None: ...

    def advance(self, count: int = 1, *, label: str | None = None) -> None: ...


class NoProgress:
    def set_total(self, total: int | None) -> None:
        del total

    def advance(self, count: int = 1, *, label: str | None = None) -> None:
        del count, label


@contextmanager
def terminal_progress(description: str, unit: str) -> Iterator[ProgressReporter]:
    """A progress bar on stderr if it is a terminal, else a reporter that does nothing."""
    if not sys.stderr.isatty():
        yield NoProgress()
        return
    from gateway.progress_bar import progress_bar

    with progress_bar(description, unit) as reporter:
        yield reporter
