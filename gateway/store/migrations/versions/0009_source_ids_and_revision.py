"""source ids never reused; sources revision; removals a source could not carry out

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite reuses the highest rowid after a delete unless the table is AUTOINCREMENT; log
    # lines and `source list` name sources by id, so an id must never mean two sources.
    # PostgreSQL's sequence never goes back already.
    with op.batch_alter_table(
        "sources",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch_op:
        batch_op.add_column(
            sa.Column(
                "removals_not_propagated", sa.BigInteger(), server_default="0", nullable=False
            )
        )
    with op.batch_alter_table("server_state") as batch_op:
        batch_op.add_column(
            sa.Column("sources_revision", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("server_state") as batch_op:
        batch_op.drop_column("sources_revision")
    with op.batch_alter_table("sources") as batch_op:
        batch_op.drop_column("removals_not_propagated")
