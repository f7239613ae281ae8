"""Admin panel credentials (browser sessions, API tokens), identities and the sync history.

Session cookies and API tokens are random, high-entropy strings: only their SHA-256 is stored,
so a copy of the database lets nobody log in (a slow hash would add nothing at 256 bits).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import col, select

from gateway.store.base import StoreBase, user_view
from gateway.store.errors import InvalidOperationError, NotFoundError
from gateway.store.models import AdminSession, ApiToken, Message, SyncRun, User
from gateway.store.views import ApiTokenInfo, SyncRunInfo, UserInfo

MAX_TOKEN_NAME = 100


def credential_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AdminAccessOperations(StoreBase):
    def create_admin_session(self, *, user_id: int, token: str, expires_at: datetime) -> None:
        """Remember a browser login; `token` is the cookie value (only its hash is kept)."""
        with self.database.write() as session:
            session.add(
                AdminSession(
                    token_hash=credential_hash(token), user_id=user_id, expires_at=expires_at
                )
            )

    def find_session_user(self, *, token: str, now: datetime) -> UserInfo | None:
        """The user a live session cookie belongs to, else None."""
        with self.database.read() as session:
            row = session.exec(
                select(User)
                .join(AdminSession, col(AdminSession.user_id) == col(User.id))
                .where(
                    AdminSession.token_hash == credential_hash(token),
                    col(AdminSession.expires_at) > now,
                )
            ).first()
            return None if row is None else user_view(row)

    def delete_admin_session(self, *, token: str) -> None:
        with self.database.write() as session:
            session.execute(
                delete(AdminSession).where(col(AdminSession.token_hash) == credential_hash(token))
            )

    def delete_user_admin_sessions(self, *, user_id: int, keep_token: str | None = None) -> None:
        """End a user's browser sessions (after a password change), except `keep_token`'s."""
        with self.database.write() as session:
            query = delete(AdminSession).where(col(AdminSession.user_id) == user_id)
            if keep_token is not None:
                query = query.where(col(AdminSession.token_hash) != credential_hash(keep_token))
            session.execute(query)

    def delete_expired_admin_sessions(self, *, now: datetime) -> None:
        with self.database.write() as session:
            session.execute(delete(AdminSession).where(col(AdminSession.expires_at) <= now))

    def create_api_token(self, *, user_id: int, name: str, token: str) -> ApiTokenInfo:
        if not name or len(name) > MAX_TOKEN_NAME:
            raise InvalidOperationError(f"token name must be 1-{MAX_TOKEN_NAME} characters")
        with self.database.write() as session:
            row = ApiToken(token_hash=credential_hash(token), user_id=user_id, name=name)
            session.add(row)
            session.flush()
            return _token_view(row)

    def list_api_tokens(self, *, user_id: int) -> list[ApiTokenInfo]:
        with self.database.read() as session:
            rows = session.exec(
                select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id))
            )
            return [_token_view(row) for row in rows]

    def revoke_api_token(self, *, user_id: int, token_id: int) -> None:
        """Delete one of the user's tokens; another user's token is 'not found'."""
        with self.database.write() as session:
            row = session.get(ApiToken, token_id)
            if row is None or row.user_id != user_id:
                raise NotFoundError(f"no such token: {token_id}")
            session.delete(row)

    def find_token_user(self, *, token: str, now: datetime) -> UserInfo | None:
        """The user an API token belongs to (noting its use), else None."""
        digest = credential_hash(token)
        with self.database.write() as session:
            row = session.exec(
                select(User)
                .join(ApiToken, col(ApiToken.user_id) == col(User.id))
                .where(ApiToken.token_hash == digest)
            ).first()
            if row is None:
                return None
            session.execute(
                update(ApiToken).where(col(ApiToken.token_hash) == digest).values(last_used_at=now)
            )
            return user_view(row)

    def list_sync_runs(self, *, source_id: int, since: datetime) -> list[SyncRunInfo]:
        with self.database.read() as session:
            rows = session.exec(
                select(SyncRun)
                .where(SyncRun.source_id == source_id, col(SyncRun.finished_at) >= since)
                .order_by(col(SyncRun.finished_at))
            )
            return [
                SyncRunInfo(
                    source_id=row.source_id,
                    finished_at=row.finished_at,
                    seconds=row.seconds,
                    fetched=row.fetched,
                    bytes=row.bytes,
                    error_class=row.error_class,
                )
                for row in rows
            ]

    def stored_message_bytes(self) -> int:
        """Total size of every stored message (a metric; blobs shared by users count once
        per message row)."""
        with self.database.read() as session:
            total = session.exec(select(func.coalesce(func.sum(Message.size), 0))).one()
            return int(total)


def _token_view(row: ApiToken) -> ApiTokenInfo:
    assert row.id is not None  # noqa: S101
    return ApiTokenInfo(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )
