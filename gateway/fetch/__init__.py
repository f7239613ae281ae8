"""Fetching mail from external POP3 and IMAP sources into the unified mailbox, and writing
flag, move and delete changes back to IMAP sources."""

from __future__ import annotations

from gateway.fetch.connections import Authenticator, PasswordAuthenticator, open_pop3
from gateway.fetch.errors import ERROR_CLASSES, SyncError, classify_error
from gateway.fetch.imap_source import ImapSyncReport, sync_imap_source
from gateway.fetch.keywords import source_keyword
from gateway.fetch.pop3 import PartialSyncError, SyncReport, sync_pop3_source
from gateway.fetch.retention import RetentionPolicy, retention_policy

__all__ = [
    "ERROR_CLASSES",
    "Authenticator",
    "ImapSyncReport",
    "PartialSyncError",
    "PasswordAuthenticator",
    "RetentionPolicy",
    "SyncError",
    "SyncReport",
    "classify_error",
    "open_pop3",
    "retention_policy",
    "source_keyword",
    "sync_imap_source",
    "sync_pop3_source",
]
