"""What administrators do to other users' accounts: the admin flag and revoking credentials.

Kept apart from `users.py` (creating and authenticating users) because each operation here
guards an invariant of the panel: there is always one administrator left, and a reset
password leaves no old way in.
"""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlmodel import col, select

from gateway.store.base import StoreBase, user_view
from gateway.store.errors import InvalidOperationError, NotFoundError
from gateway.store.models import AdminSession, ApiToken, User
from gateway.store.views import UserInfo


class LastAdministratorError(InvalidOperationError):
    """The change would leave the gateway without an administrator."""


class UserAdminOperations(StoreBase):
    def set_user_admin(self, *, user_id: int, is_admin: bool) -> UserInfo:
        """Grant or take away administration; the last administrator keeps it."""
        with self.database.write() as session:
            # Lock the administrators' rows (PostgreSQL) so two demotions at once cannot
            # each see the other as the one left.
            admins = session.exec(
                select(User.id).where(col(User.is_admin).is_(True)).with_for_update()
            ).all()
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError(f"no such user id: {user_id}")
            if not is_admin and user.is_admin and len(admins) <= 1:
                raise LastAdministratorError(
                    f"{user.name} is the last administrator: make someone else one first"
                )
            user.is_admin = is_admin
            session.add(user)
            session.flush()
            return user_view(user)

    def count_admins(self) -> int:
        with self.database.read() as session:
            count = session.exec(
                select(func.count()).select_from(User).where(col(User.is_admin).is_(True))
            ).one()
            return int(count)

    def revoke_user_credentials(self, *, user_id: int) -> None:
        """End every browser session and delete every API token of a user (after an
        administrator reset their password: whoever had the old one is locked out)."""
        with self.database.write() as session:
            session.execute(delete(AdminSession).where(col(AdminSession.user_id) == user_id))
            session.execute(delete(ApiToken).where(col(ApiToken.user_id) == user_id))
