"""The NOTIFY half of the PostgreSQL change feed, queued inside each write transaction."""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

CHANNEL = "gateway_mailbox_changes"
_NOTIFY = text(f"SELECT pg_notify('{CHANNEL}', :payload)")


def queue_change_notice(session: Session, mailbox_id: int, modseq: int) -> None:
    """Queue a notice PostgreSQL delivers at commit (and drops on rollback); SQLite: no-op."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY, {"payload": f"{mailbox_id}:{modseq}"})
