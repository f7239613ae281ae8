"""Noselect mailboxes and shared login throttling

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

`mailboxes.noselect` keeps a deleted mailbox's name while it has inferiors (RFC 3501
§6.3.4); `login_failures` holds failed-login counts per address and per user name, so the
throttle holds across connections and replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("noselect", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("mailboxes", schema=None) as batch_op:
        batch_op.drop_column("noselect")
