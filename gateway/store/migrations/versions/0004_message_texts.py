"""search text in a table of its own

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Moves header_text, body_text and body_text_truncated from `messages` to `message_texts`, so
that a FETCH of precomputed items reads small rows. On SQLite the freed pages stay in the file
until a VACUUM (docs/operations.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MOVED = ("header_text", "body_text", "body_text_truncated")


def upgrade() -> None:
    op.create_table(
        "message_texts",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("header_text", sa.Text(), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_text_truncated", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.execute(
        "INSERT INTO message_texts (message_id, header_text, body_text, body_text_truncated) "
        "SELECT id, header_text, body_text, body_text_truncated FROM messages"
    )
    _drop_moved_columns()


def _drop_moved_columns() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops an unindexed column in place; batch mode would rebuild the table
        # and its partial index from reflection.
        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(
                f"SQLite {sqlite3.sqlite_version} is too old: 3.35 or newer is needed"
            )
        for name in _MOVED:
            op.execute(f"ALTER TABLE messages DROP COLUMN {name}")
        return
    for name in _MOVED:
        op.drop_column("messages", name)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("header_text", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("body_text", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column(
                "body_text_truncated", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.execute(
        "UPDATE messages SET "
        "header_text = (SELECT t.header_text FROM message_texts t WHERE t.message_id = messages.id),"
        " body_text = (SELECT t.body_text FROM message_texts t WHERE t.message_id = messages.id),"
        " body_text_truncated = (SELECT t.body_text_truncated FROM message_texts t"
        " WHERE t.message_id = messages.id)"
        " WHERE id IN (SELECT message_id FROM message_texts)"
    )
    op.drop_table("message_texts")
