"""The caller's API tokens, for scripts: create (shown once), list, revoke."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, status

from gateway.admin.deps import CurrentUser, ResourceId, StoreDep
from gateway.admin.schemas import TokenCreate, TokenCreated, TokenPublic
from gateway.admin.sessions import new_api_token
from gateway.store import ApiTokenInfo, NotFoundError

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api/tokens", tags=["tokens"])


def _public(token: ApiTokenInfo) -> TokenPublic:
    return TokenPublic(
        id=token.id, name=token.name, created_at=token.created_at, last_used_at=token.last_used_at
    )


@router.get("")
def list_tokens(user: CurrentUser, store: StoreDep) -> list[TokenPublic]:
    return [_public(token) for token in store.list_api_tokens(user_id=user.id)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, user: CurrentUser, store: StoreDep) -> TokenCreated:
    """A new token; send it as `Authorization: Bearer <token>`. It is shown only here."""
    token = new_api_token()
    info = store.create_api_token(user_id=user.id, name=body.name, token=token)
    log.info("event=admin_token_created user_id=%d token_id=%d", user.id, info.id)
    return TokenCreated(**_public(info).model_dump(), token=token)


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"description": "No such token"}},
)
def revoke_token(token_id: ResourceId, user: CurrentUser, store: StoreDep) -> None:
    try:
        store.revoke_api_token(user_id=user.id, token_id=token_id)
    except NotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token") from None
    log.info("event=admin_token_revoked user_id=%d token_id=%d", user.id, token_id)
