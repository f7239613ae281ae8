"""The caller's identities: the addresses they send as, and the relay each one leaves by.

The relay secret is write-only: taken on add and edit, never returned and never logged (the
log lines carry ids only).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, status

from gateway.admin.deps import CurrentUser, ResourceId, StoreDep
from gateway.admin.schemas import IdentityPublic
from gateway.identity_settings import IdentityCreate, IdentityUpdate
from gateway.store import AlreadyExistsError, IdentityInfo, NotFoundError

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api/identities", tags=["identities"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such identity"}}


def _public(identity: IdentityInfo) -> IdentityPublic:
    return IdentityPublic(
        id=identity.id,
        address=identity.address,
        display_name=identity.display_name,
        is_default=identity.is_default,
        source_id=identity.source_id,
        relay_host=identity.relay_host,
        relay_port=identity.relay_port,
        relay_security=identity.relay_security,
        relay_username=identity.relay_username,
        has_relay_secret=identity.has_relay_secret,
        relay_options=identity.relay_options,
        save_to_source_sent=identity.save_to_source_sent,
    )


@router.get("")
def list_identities(user: CurrentUser, store: StoreDep) -> list[IdentityPublic]:
    return [_public(identity) for identity in store.list_identities(user_id=user.id)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "Exists"}, 404: {"description": "No such source"}},
)
def add_identity(body: IdentityCreate, user: CurrentUser, store: StoreDep) -> IdentityPublic:
    """Add an address to send as; relay settings left out default from the source and the
    provider."""
    arguments = body.store_arguments()
    arguments["display_name"] = arguments["display_name"] or ""
    try:
        identity = store.add_identity(
            user_id=user.id,
            address=body.address,
            source_id=body.source_id,
            relay_secret=body.relay_secret.get_secret_value() if body.relay_secret else None,
            **arguments,
        )
    except AlreadyExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, "you have that address already") from None
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such source") from None
    log.info("event=admin_identity_added user_id=%d identity_id=%d", user.id, identity.id)
    return _public(identity)


@router.patch("/{identity_id}", responses=NOT_FOUND)
def update_identity(
    identity_id: ResourceId, body: IdentityUpdate, user: CurrentUser, store: StoreDep
) -> IdentityPublic:
    """Change what is given; without `relay_secret` the stored secret stays."""
    try:
        identity = store.update_identity(
            user_id=user.id,
            identity_id=identity_id,
            relay_secret=body.relay_secret.get_secret_value() if body.relay_secret else None,
            use_source_secret=body.use_source_secret,
            **body.store_arguments(),
        )
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such identity") from None
    log.info("event=admin_identity_updated user_id=%d identity_id=%d", user.id, identity.id)
    return _public(identity)


@router.delete("/{identity_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def remove_identity(identity_id: ResourceId, user: CurrentUser, store: StoreDep) -> None:
    try:
        store.remove_identity(user_id=user.id, identity_id=identity_id)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such identity") from None
    log.info("event=admin_identity_removed user_id=%d identity_id=%d", user.id, identity_id)
