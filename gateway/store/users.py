"""User operations."""

from __future__ import annotations

import functools

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway.store.base import StoreBase, user_view
from gateway.store.errors import AlreadyExistsError, InvalidOperationError, NotFoundError
from gateway.store.models import Mailbox, Subscription, User
from gateway.store.passwords import hash_password, needs_rehash, verify_password
from gateway.store.views import UserInfo

# RFC 6154 special-use folders every user gets, with the names mainstream clients expect.
DEFAULT_MAILBOXES: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)

MAX_NAME_LENGTH = 255


def _check_user_name(name: str) -> None:
    if not name or len(name) > MAX_NAME_LENGTH or any(c.isspace() or ord(c) < 32 for c in name):
        raise InvalidOperationError(
            "user name must be 1-255 characters without spaces or control characters"
        )


class UserOperations(StoreBase):
    def create_user(self, *, name: str, password: str, is_admin: bool = False) -> UserInfo:
        """Create a user with a hashed password and the default special-use mailboxes."""
        _check_user_name(name)
        if not password:
            raise InvalidOperationError("password must not be empty")
        password_hash = hash_password(password)
        try:
            with self.database.write() as session:
                user = User(name=name, password_hash=password_hash, is_admin=is_admin)
                session.add(user)
                session.flush()
                assert user.id is not None  # noqa: S101
                for mailbox_name, special_use in DEFAULT_MAILBOXES:
                    session.add(
                        Mailbox(
                            user_id=user.id,
                            name=mailbox_name,
                            special_use=special_use,
                            uidvalidity=self._allocate_uidvalidity(session),
                        )
                    )
                    session.add(Subscription(user_id=user.id, name=mailbox_name))
                return user_view(user)
        except IntegrityError as error:
            raise AlreadyExistsError(f"user already exists: {name}") from error

    def get_user(self, *, name: str) -> UserInfo:
        with self.database.read() as session:
            return user_view(self._user_by_name(session, name))

    def get_user_by_id(self, *, user_id: int) -> UserInfo:
        with self.database.read() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError(f"no such user id: {user_id}")
            return user_view(user)

    def list_users(self) -> list[UserInfo]:
        with self.database.read() as session:
            return [user_view(u) for u in session.exec(select(User).order_by(User.name))]

    def authenticate_user(self, *, name: str, password: str) -> UserInfo | None:
        """The user if the password is right, else None; upgrades outdated hashes in passing."""
        with self.database.read() as session:
            user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            # Spend the same work as a real check so timing does not reveal unknown names.
            verify_password(_dummy_hash(), password)
            return None
        if self._verified_passwords.matches(name, user.password_hash, password):
            return user_view(user)
        if not verify_password(user.password_hash, password):
            return None
        if needs_rehash(user.password_hash):
            self.set_user_password(name=name, password=password)
        else:
            self._verified_passwords.remember(name, user.password_hash, password)
        return user_view(user)

    def set_user_password(self, *, name: str, password: str) -> None:
        if not password:
            raise InvalidOperationError("password must not be empty")
        password_hash = hash_password(password)
        with self.database.write() as session:
            user = self._user_by_name(session, name)
            user.password_hash = password_hash
            session.add(user)
        self._verified_passwords.forget(name)

    def delete_user(self, *, name: str) -> None:
        """Delete a user with all their mailboxes, messages and sources (blobs are GC'd later)."""
        with self.database.write() as session:
            session.delete(self._user_by_name(session, name))
        self._verified_passwords.forget(name)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password")
