"""The unified mail store: the only code that touches the database and the blob directory.

Names are loaded at first use (PEP 562), so that importing a light submodule, such as the
listings the CLI reads without SQLAlchemy (`listing.py`), does not import the whole store.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives.
_MODULES = {
    "AdoptRule": "gateway.store.ingest",
    "AlreadyExistsError": "gateway.store.errors",
    "ApiTokenInfo": "gateway.store.views",
    "AppendResult": "gateway.store.views",
    "ChangeInfo": "gateway.store.views",
    "CopyResult": "gateway.store.views",
    "EntryInfo": "gateway.store.views",
    "FlagUpdate": "gateway.store.views",
    "FolderKey": "gateway.store.source_sync",
    "IdentityInfo": "gateway.store.views",
    "InvalidOperationError": "gateway.store.errors",
    "LimitExceededError": "gateway.store.errors",
    "LinkedMessage": "gateway.store.source_sync",
    "MailStore": "gateway.store.mail_store",
    "MailboxInfo": "gateway.store.views",
    "MailboxLimits": "gateway.store.mailboxes",
    "MailboxStatus": "gateway.store.views",
    "MessageInfo": "gateway.store.views",
    "MessageTooLargeError": "gateway.store.errors",
    "NewMessage": "gateway.store.ingest",
    "NotFoundError": "gateway.store.errors",
    "OriginKey": "gateway.store.ingest",
    "RemotePair": "gateway.store.source_sync",
    "SourceFolderInfo": "gateway.store.source_sync",
    "SourceInfo": "gateway.store.views",
    "StoreError": "gateway.store.errors",
    "SyncRunInfo": "gateway.store.views",
    "UserInfo": "gateway.store.views",
    "open_store": "gateway.store.mail_store",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
