"""First-start chores: the first admin user, announced once."""

from __future__ import annotations

import logging
import secrets

from gateway.store import MailStore, UserInfo

log = logging.getLogger("gateway.bootstrap")

FIRST_ADMIN_NAME = "admin"


def create_first_admin(store: MailStore) -> tuple[UserInfo, str] | None:
    """Create `admin` with a random password when the store has no users; else None."""
    if store.list_users():
        return None
    password = secrets.token_urlsafe(18)
    user = store.create_user(name=FIRST_ADMIN_NAME, password=password, is_admin=True)
    log.warning("event=first_admin_created user=%s", user.name)
    return user, password
