"""identity relay settings and the outbound queue

Revision ID: 0006
Revises: 0007 (was 0004 on the branch; re-chained after main's head when merging main)
Create Date: 2026-12-07

Identities learn how to relay (host, port, security, login, optional own secret, options,
whether to keep a copy in the source's Sent folder); `outbound_messages` is the durable queue
of the SMTP submission server. Every existing source whose login is an address becomes an
identity of its user, relaying through `smtp.` + its domain on 587 with STARTTLS (operators
correct known providers with `gateway identity add --relay-host ...`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relay_host", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("relay_port", sa.Integer(), server_default="587", nullable=False)
        )
        batch_op.add_column(
            sa.Column("relay_security", sa.Text(), server_default="starttls", nullable=False)
        )
        batch_op.add_column(
            sa.Column("relay_username", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("relay_secret_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("relay_options_json", sa.Text(), server_default="{}", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "save_to_source_sent", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("recipients_json", sa.Text(), nullable=False),
        sa.Column("blob_hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("message_id_header", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("upstream_reply", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_outbound_messages_due", "outbound_messages", ["state", "next_attempt_at"], unique=False
    )
    op.create_index(
        op.f("ix_outbound_messages_user_id"), "outbound_messages", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_outbound_messages_blob_hash"), "outbound_messages", ["blob_hash"], unique=False
    )
    _identities_for_existing_sources()


def _identities_for_existing_sources() -> None:
    bind = op.get_bind()
    sources = bind.execute(
        sa.text(
            "SELECT s.id, s.user_id, s.username FROM sources s WHERE s.username LIKE '%@%' "
            "AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.user_id = s.user_id "
            "AND i.address = lower(s.username))"
        )
    ).all()
    seen: set[tuple[int, str]] = set()
    for source_id, user_id, username in sources:
        address = str(username).strip().lower()
        if (user_id, address) in seen:
            continue
        seen.add((user_id, address))
        bind.execute(
            sa.text(
                "INSERT INTO identities (user_id, address, display_name, source_id, is_default,"
                " relay_host, relay_port, relay_security, relay_username, relay_options_json,"
                " save_to_source_sent) VALUES (:user_id, :address, '', :source_id, :no,"
                " :host, 587, 'starttls', :username, '{}', :no)"
            ),
            {
                "user_id": user_id,
                "address": address,
                "source_id": source_id,
                "no": False,
                "host": "smtp." + address.rsplit("@", 1)[1],
                "username": username,
            },
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_outbound_messages_blob_hash"), table_name="outbound_messages")
    op.drop_index(op.f("ix_outbound_messages_user_id"), table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_due", table_name="outbound_messages")
    op.drop_table("outbound_messages")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        for name in (
            "save_to_source_sent",
            "relay_options_json",
            "relay_secret_ciphertext",
            "relay_username",
            "relay_security",
            "relay_port",
            "relay_host",
        ):
            batch_op.drop_column(name)
