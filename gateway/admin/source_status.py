"""A source's state and the warnings about risky setups, decided from its row alone (pure).

The warnings exist because the panel is where a non-expert sets the gateway up: the dangerous
thing must be visible where it is chosen, not found out when mail is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from gateway.fetch.budget import daily_limit
from gateway.store import SourceInfo

SourceState = Literal[
    "ok", "failing", "credentials_rejected", "reconnect_needed", "never_synced", "disabled"
]
WarningCode = Literal[
    "pop3_deletes_while_read_elsewhere",
    "no_tls",
    "same_account_twice",
    "failing_over_a_day",
    "budget_nearly_used",
]
FAILING_TOO_LONG = timedelta(days=1)
BUDGET_WARNING_FRACTION = 0.9


@dataclass(frozen=True)
class SourceWarning:
    code: WarningCode
    message: str


def source_state(source: SourceInfo, *, now: datetime) -> SourceState:
    del now  # the state depends on the row alone today; kept for a time-based state later
    if not source.enabled:
        return "disabled"
    if source.reconnect_needed:
        return "reconnect_needed"  # the OAuth2 grant is gone: connect the account again
    if source.credentials_rejected:
        return "credentials_rejected"  # stopped until the password changes
    if source.consecutive_failures > 0:
        return "failing"
    if source.last_success_at is None:
        return "never_synced"
    return "ok"


def budget_used(sync_state: dict[str, object], *, now: datetime) -> int:
    """Bytes downloaded so far on the current UTC day (see gateway/fetch/budget.py)."""
    if sync_state.get("budget_day") != now.date().isoformat():
        return 0
    value = sync_state.get("budget_bytes", 0)
    return value if isinstance(value, int) else 0


def _account(source: SourceInfo) -> tuple[str, str]:
    """The mailbox a source reads, whatever protocol: POP3 and IMAP hosts of one provider
    differ only by their first label (pop.example.com / imap.example.com)."""
    host = source.host.lower().rstrip(".")
    labels = host.split(".")
    if len(labels) > 2 and labels[0] in {"pop", "pop3", "imap", "mail", "pop3s", "imaps"}:
        host = ".".join(labels[1:])
    return host, source.username.lower()


def source_warnings(
    source: SourceInfo,
    *,
    siblings: Sequence[SourceInfo],
    budget_bytes_used: int,
    now: datetime,
) -> list[SourceWarning]:
    """What is risky about this source, among its owner's other sources (`siblings`)."""
    warnings: list[SourceWarning] = []
    others = [s for s in siblings if s.id != source.id and _account(s) == _account(source)]
    deletes = source.protocol == "pop3" and source.options.get("retention") in (
        "delete_after_download",
        "delete_after_days",
    )
    if deletes:
        read_over_imap = any(s.protocol == "imap" for s in others)
        warnings.append(
            SourceWarning(
                "pop3_deletes_while_read_elsewhere",
                "This POP3 source deletes mail from the server after downloading it"
                + (" while the same account is also read over IMAP here" if read_over_imap else "")
                + ": any phone, webmail or IMAP client reading that account loses its copy.",
            )
        )
    if source.security == "none":
        warnings.append(
            SourceWarning("no_tls", "No TLS: the password and mail cross the network readable.")
        )
    if any(s.protocol == source.protocol for s in others):
        warnings.append(
            SourceWarning(
                "same_account_twice",
                "The same account is added twice: its mail is fetched by both sources.",
            )
        )
    if (
        source.consecutive_failures > 0
        and source.last_success_at is not None
        and now - source.last_success_at > FAILING_TOO_LONG
    ):
        warnings.append(
            SourceWarning(
                "failing_over_a_day",
                f"Failing for more than a day ({source.consecutive_failures} attempts): "
                f"{source.last_error or 'unknown error'}",
            )
        )
    limit = daily_limit(source)
    if limit and budget_bytes_used >= BUDGET_WARNING_FRACTION * limit:
        warnings.append(
            SourceWarning(
                "budget_nearly_used",
                f"{budget_bytes_used * 100 // limit}% of today's download budget is used; "
                "fetching pauses until midnight UTC when it is spent.",
            )
        )
    return warnings
