"""Users: administrators list, create, delete them and reset their passwords."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status

from gateway.admin.deps import AdminUser, ResourceId, StoreDep
from gateway.admin.routes.auth import user_public
from gateway.admin.schemas import UserCreate, UserPublic, UserUpdate
from gateway.store import AlreadyExistsError, NotFoundError, UserInfo
from gateway.store.mail_store import MailStore
from gateway.store.user_admin import LastAdministratorError

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api/users", tags=["users"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such user"}}


def _user(store: MailStore, user_id: int) -> UserInfo:
    try:
        return store.get_user_by_id(user_id=user_id)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user") from None


@router.get("")
def list_users(admin: AdminUser, store: StoreDep) -> list[UserPublic]:
    return [user_public(user) for user in store.list_users()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "Name taken"}},
)
def create_user(body: UserCreate, admin: AdminUser, store: StoreDep) -> UserPublic:
    try:
        user = store.create_user(
            name=body.name, password=body.password.get_secret_value(), is_admin=body.is_admin
        )
    except AlreadyExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, "a user of that name exists") from None
    log.info("event=admin_user_created by=%d user_id=%d", admin.id, user.id)
    return user_public(user)


@router.patch(
    "/{user_id}",
    responses={**NOT_FOUND, 409: {"description": "Would leave no administrator"}},
)
def update_user(
    user_id: ResourceId, body: UserUpdate, admin: AdminUser, store: StoreDep
) -> UserPublic:
    """Reset a user's password (their sessions end and their API tokens are revoked: whoever
    had the old password is out) and grant or take away administration (the last
    administrator keeps it)."""
    user = _user(store, user_id)
    if body.is_admin is not None and body.is_admin != user.is_admin:
        try:
            user = store.set_user_admin(user_id=user.id, is_admin=body.is_admin)
        except LastAdministratorError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        log.info(
            "event=admin_user_admin_set by=%d user_id=%d is_admin=%s",
            admin.id,
            user.id,
            user.is_admin,
        )
    if body.password is not None:
        store.set_user_password(name=user.name, password=body.password.get_secret_value())
        store.revoke_user_credentials(user_id=user.id)
        log.info("event=admin_user_password_set by=%d user_id=%d", admin.id, user.id)
    return user_public(user)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, 409: {"description": "Cannot delete yourself"}},
)
def delete_user(user_id: ResourceId, admin: AdminUser, store: StoreDep) -> None:
    """Delete a user with their mailboxes and sources."""
    user = _user(store, user_id)
    if user.id == admin.id:
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot delete yourself")
    store.delete_user(name=user.name)
    log.info("event=admin_user_deleted by=%d user_id=%d", admin.id, user.id)
