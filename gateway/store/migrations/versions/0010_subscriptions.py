"""subscriptions in a table of their own

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

A subscription is a name, not a mailbox: RFC 3501 §6.3.9 forbids removing it when the mailbox
is deleted, and RFC 5258 lists such names as \\NonExistent. The `mailboxes.subscribed` flag
moves to `subscriptions` (user, name); the downgrade folds it back, dropping subscriptions
whose mailbox no longer exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "name"),
    )
    op.execute(
        "INSERT INTO subscriptions (user_id, name) "
        "SELECT user_id, name FROM mailboxes WHERE subscribed"
    )
    # In place on both backends (SQLite 3.35+, as 0004 needs): batch mode would rebuild
    # `mailboxes`, which every entry refers to with ON DELETE CASCADE.
    op.execute("ALTER TABLE mailboxes DROP COLUMN subscribed")


def downgrade() -> None:
    op.add_column(
        "mailboxes",
        sa.Column("subscribed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE mailboxes SET subscribed = EXISTS (SELECT 1 FROM subscriptions s "
        "WHERE s.user_id = mailboxes.user_id AND s.name = mailboxes.name)"
    )
    op.drop_table("subscriptions")
