"""Domain errors raised by store operations; callers render them for their own protocol."""

from __future__ import annotations


class StoreError(Exception):
    """Root of every error the store raises on purpose."""


class NotFoundError(StoreError):
    """The named user, source, mailbox or message does not exist."""


class AlreadyExistsError(StoreError):
    """A unique name (user, source, mailbox) is taken."""


class InvalidOperationError(StoreError):
    """The request is well-formed but not allowed (e.g. deleting INBOX)."""


class LimitExceededError(StoreError):
    """A per-user limit (mailbox count, depth, name length) would be exceeded."""


class MessageTooLargeError(StoreError):
    """The message exceeds the configured maximum size."""
