"""OAuth2 sources: an auth method, the provider, the scopes and a cached access token

Revision ID: 0011
Revises: 0006
Create Date: 2026-12-08

Every existing source keeps logging in with its password (`auth_method` "password"). For an
"oauth2" source `secret_ciphertext` holds the refresh token, encrypted like a password.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("auth_method", sa.String(16), server_default="password", nullable=False)
        )
        batch_op.add_column(sa.Column("oauth_provider", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("oauth_scopes", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("oauth_access_ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("oauth_access_expires_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("oauth_access_expires_at")
        batch_op.drop_column("oauth_access_ciphertext")
        batch_op.drop_column("oauth_scopes")
        batch_op.drop_column("oauth_provider")
        batch_op.drop_column("auth_method")
