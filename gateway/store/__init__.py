"""The unified mail store: the only code that touches the database and the blob directory."""

from __future__ import annotations

from gateway.store.errors import (
    AlreadyExistsError,
    InvalidOperationError,
    LimitExceededError,
    MessageTooLargeError,
    NotFoundError,
    StoreError,
)
from gateway.store.ingest import AdoptRule, NewMessage, OriginKey
from gateway.store.mail_store import MailStore, open_store
from gateway.store.mailboxes import MailboxLimits
from gateway.store.source_sync import FolderKey, LinkedMessage, RemotePair, SourceFolderInfo
from gateway.store.views import (
    ApiTokenInfo,
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
    SyncRunInfo,
    UserInfo,
)

__all__ = [
    "AdoptRule",
    "AlreadyExistsError",
    "ApiTokenInfo",
    "AppendResult",
    "ChangeInfo",
    "CopyResult",
    "EntryInfo",
    "FlagUpdate",
    "FolderKey",
    "IdentityInfo",
    "InvalidOperationError",
    "LimitExceededError",
    "LinkedMessage",
    "MailStore",
    "MailboxInfo",
    "MailboxLimits",
    "MailboxStatus",
    "MessageInfo",
    "MessageTooLargeError",
    "NewMessage",
    "NotFoundError",
    "OriginKey",
    "RemotePair",
    "SourceFolderInfo",
    "SourceInfo",
    "StoreError",
    "SyncRunInfo",
    "UserInfo",
    "open_store",
]
