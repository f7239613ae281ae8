"""The caller's identities: the addresses they send as."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from gateway.admin.deps import CurrentUser, ResourceId, StoreDep
from gateway.admin.schemas import IdentityCreate, IdentityPublic
from gateway.store import AlreadyExistsError, IdentityInfo, NotFoundError

router = APIRouter(prefix="/api/identities", tags=["identities"])


def _public(identity: IdentityInfo) -> IdentityPublic:
    return IdentityPublic(
        id=identity.id,
        address=identity.address,
        display_name=identity.display_name,
        is_default=identity.is_default,
    )


@router.get("")
def list_identities(user: CurrentUser, store: StoreDep) -> list[IdentityPublic]:
    return [_public(identity) for identity in store.list_identities(user_id=user.id)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {"description": "Exists"}})
def add_identity(body: IdentityCreate, user: CurrentUser, store: StoreDep) -> IdentityPublic:
    try:
        identity = store.add_identity(
            user_id=user.id, address=body.address, display_name=body.display_name
        )
    except AlreadyExistsError:
        raise HTTPException(status.HTTP_409_CONFLICT, "you have that address already") from None
    return _public(identity)


@router.delete(
    "/{identity_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such identity"}},
)
def remove_identity(identity_id: ResourceId, user: CurrentUser, store: StoreDep) -> None:
    try:
        store.remove_identity(user_id=user.id, identity_id=identity_id)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such identity") from None
