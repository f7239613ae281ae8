"""First-start chores: the first admin user, announced once."""

from __future__ import annotations

import logging
import secrets

from gateway.store import AlreadyExistsError, MailStore, UserInfo

log = logging.getLogger("gateway.bootstrap")

FIRST_ADMIN_NAME = "admin"


def create_first_admin(
    store: MailStore, *, password: str | None = None
) -> tuple[UserInfo, str] | None:
    """Create `admin` when the store has no users, with `password` (an operator's secret) or a
    random one; None when users exist, or another replica starting at the same time won."""
    if store.list_users():
        return None
    password = password or secrets.token_urlsafe(18)
    try:
        user = store.create_user(name=FIRST_ADMIN_NAME, password=password, is_admin=True)
    except AlreadyExistsError:
        return None
    log.warning("event=first_admin_created user=%s", user.name)
    return user, password
