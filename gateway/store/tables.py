"""Core `Table` objects of the hot tables, for bulk inserts without ORM bookkeeping.

`session.execute(insert(Model), rows)` runs SQLAlchemy's ORM bulk path, which costs more per
row than the database does; ingest and copy insert thousands of rows per transaction.
"""

from __future__ import annotations

from sqlalchemy import Table

from gateway.store.models import (
    Change,
    Mailbox,
    MailboxEntry,
    Message,
    MessageText,
    Origin,
    SourceFolder,
)


def _table(model: type) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)  # noqa: S101
    return table


MESSAGES = _table(Message)
MESSAGE_TEXTS = _table(MessageText)
MAILBOXES = _table(Mailbox)
MAILBOX_ENTRIES = _table(MailboxEntry)
CHANGES = _table(Change)
ORIGINS = _table(Origin)
SOURCE_FOLDERS = _table(SourceFolder)

# The columns of a `MailboxInfo`, in its field order, for hot raw reads of one mailbox row.
MAILBOX_INFO_COLUMNS = (
    MAILBOXES.c.id,
    MAILBOXES.c.user_id,
    MAILBOXES.c.name,
    MAILBOXES.c.special_use,
    MAILBOXES.c.uidvalidity,
    MAILBOXES.c.uidnext,
    MAILBOXES.c.highestmodseq,
    MAILBOXES.c.noselect,
)
