"""A per-source daily download budget, so a first sync never trips a provider's limit.

Defaults fit Gmail's published limits (2,500 MB/day over IMAP, 1,250 MB/day over POP3);
the source option `daily_budget_mb` changes it (0: unlimited). The day is the UTC day of the
injected clock, and the bytes spent are kept in the source's sync state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.fetch.errors import SyncError
from gateway.store import MailStore, SourceInfo

MEGABYTE = 1024 * 1024
DEFAULT_DAILY_MB = {"imap": 2500, "pop3": 1250}


class BudgetExhaustedError(SyncError):
    """Today's budget is spent; the sync resumes at `resume_at` from where it stopped."""

    def __init__(self, message: str, resume_at: datetime) -> None:
        super().__init__("quota", message)
        self.resume_at = resume_at


def daily_limit(source: SourceInfo) -> int:
    value: Any = source.options.get("daily_budget_mb", DEFAULT_DAILY_MB.get(source.protocol, 0))
    try:
        megabytes = float(value)
    except (TypeError, ValueError):
        megabytes = DEFAULT_DAILY_MB.get(source.protocol, 0)
    return max(0, int(megabytes * MEGABYTE))


class DailyBudget:
    def __init__(self, store: MailStore, source: SourceInfo, now: datetime) -> None:
        self._store = store
        self._source_id = source.id
        self.limit = daily_limit(source)
        self._day = now.astimezone(UTC).date()
        self._state = store.read_sync_state(source.id)
        same_day = self._state.get("budget_day") == self._day.isoformat()
        self.spent = int(self._state.get("budget_bytes", 0)) if same_day else 0

    def allows(self, size: int, *, ahead: int = 0) -> bool:
        """Whether `size` more bytes fit today after `ahead` bytes already planned; a batch
        bigger than a whole day's budget still goes as the first download of a day, or it
        could never be fetched."""
        used = self.spent + ahead
        return self.limit == 0 or used + size <= self.limit or used == 0

    def spend(self, size: int) -> None:
        self.spent += size

    def save(self) -> None:
        self._state.update(budget_day=self._day.isoformat(), budget_bytes=self.spent)
        self._store.write_sync_state(self._source_id, self._state)

    def exhausted(self) -> BudgetExhaustedError:
        tomorrow = datetime.combine(self._day + timedelta(days=1), datetime.min.time(), UTC)
        return BudgetExhaustedError(
            f"daily download budget of {self.limit // MEGABYTE} MB reached; resumes "
            f"{tomorrow:%Y-%m-%d} 00:00 UTC",
            tomorrow,
        )
