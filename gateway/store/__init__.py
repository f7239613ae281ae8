"""The unified mail store: the only code that touches the database and the blob directory."""

from __future__ import annotations

from gateway.store.errors import (
    AlreadyExistsError,
    InvalidOperationError,
    MessageTooLargeError,
    NotFoundError,
    StoreError,
)
from gateway.store.ingest import NewMessage, OriginKey
from gateway.store.mail_store import MailStore, open_store
from gateway.store.views import (
    AppendResult,
    ChangeInfo,
    CopyResult,
    EntryInfo,
    FlagUpdate,
    IdentityInfo,
    MailboxInfo,
    MailboxStatus,
    MessageInfo,
    SourceInfo,
    UserInfo,
)

__all__ = [
    "AlreadyExistsError",
    "AppendResult",
    "ChangeInfo",
    "CopyResult",
    "EntryInfo",
    "FlagUpdate",
    "IdentityInfo",
    "InvalidOperationError",
    "MailStore",
    "MailboxInfo",
    "MailboxStatus",
    "MessageInfo",
    "MessageTooLargeError",
    "NewMessage",
    "NotFoundError",
    "OriginKey",
    "SourceInfo",
    "StoreError",
    "UserInfo",
    "open_store",
]
