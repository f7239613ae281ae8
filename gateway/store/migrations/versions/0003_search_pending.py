"""search text indexed after fetch

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("search_pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(
            "ix_messages_search_pending",
            ["id"],
            unique=False,
            sqlite_where=sa.text("search_pending = 1"),
            postgresql_where=sa.text("search_pending"),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_messages_search_pending",
            sqlite_where=sa.text("search_pending = 1"),
            postgresql_where=sa.text("search_pending"),
        )
        batch_op.drop_column("search_pending")
