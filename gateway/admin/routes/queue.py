"""The outbound queue: a user's messages waiting to be relayed or bounced (administrators
see everyone's), with retry and drop."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, status

from gateway.admin.deps import CurrentUser, ResourceId, ServicesDep, StoreDep
from gateway.admin.schemas import QueuedMessagePublic
from gateway.store import InvalidOperationError, NotFoundError, UserInfo
from gateway.store.mail_store import MailStore
from gateway.store.outbound_counts import LISTED_STATES, queue_state
from gateway.store.views import OutboundInfo

log = logging.getLogger("gateway.admin")
router = APIRouter(prefix="/api/queue", tags=["queue"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such message"},
    409: {"description": "Not in a state that allows it"},
}


def _public(item: OutboundInfo, names: dict[int, str]) -> QueuedMessagePublic:
    state = queue_state(item.state, item.last_error)
    return QueuedMessagePublic(
        id=item.id,
        user_id=item.user_id,
        user_name=names.get(item.user_id, ""),
        sender=item.sender,
        recipients=list(item.recipients),
        size=item.size,
        state=state,
        attempts=item.attempts,
        next_attempt_at=None if state == "bounced" else item.next_attempt_at,
        expires_at=item.expires_at,
        created_at=item.created_at,
        last_error=item.last_error,
    )


def _names(store: MailStore, user: UserInfo) -> dict[int, str]:
    if not user.is_admin:
        return {user.id: user.name}
    return {other.id: other.name for other in store.list_users()}


def _visible_message(store: MailStore, user: UserInfo, outbound_id: int) -> OutboundInfo:
    """A message the caller may act on; another user's is "not found" (no probing)."""
    try:
        item = store.get_outbound_message(outbound_id=outbound_id)
    except NotFoundError:
        item = None
    if item is None or item.state not in LISTED_STATES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such message in the queue")
    if item.user_id != user.id and not user.is_admin:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such message in the queue")
    return item


@router.get("")
def list_queue(user: CurrentUser, store: StoreDep) -> list[QueuedMessagePublic]:
    """Queued, deferred, relayed and bounced messages: the caller's, or everyone's for an
    administrator."""
    names = _names(store, user)
    items = store.list_outbound_messages(
        user_id=None if user.is_admin else user.id, states=LISTED_STATES
    )
    return [_public(item, names) for item in items]


@router.post("/{message_id}/retry", responses=RESPONSES)
def retry_message(
    message_id: ResourceId, user: CurrentUser, services: ServicesDep
) -> QueuedMessagePublic:
    """Relay at the next opportunity; a bounced message is queued again for a new lifetime."""
    store = services.store
    _visible_message(store, user, message_id)
    lifetime = timedelta(seconds=services.settings.smtp_queue_lifetime_seconds)
    try:
        item = store.retry_outbound_message(
            outbound_id=message_id, now=datetime.now(UTC), lifetime=lifetime
        )
    except InvalidOperationError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    log.info("event=admin_queue_retry user_id=%d outbound_id=%d", user.id, message_id)
    return _public(item, _names(store, user))


@router.post("/{message_id}/drop", status_code=status.HTTP_204_NO_CONTENT, responses=RESPONSES)
def drop_message(message_id: ResourceId, user: CurrentUser, store: StoreDep) -> None:
    """Give up on a queued message: it is neither relayed nor bounced, and leaves the list."""
    _visible_message(store, user, message_id)
    try:
        store.drop_outbound_message(outbound_id=message_id, now=datetime.now(UTC))
    except InvalidOperationError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    log.info("event=admin_queue_drop user_id=%d outbound_id=%d", user.id, message_id)
