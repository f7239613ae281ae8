"""Plain, immutable results returned by store operations (ORM objects never leave the store)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from gateway.store.flags import flag_names


def credentials_tag(secret_ciphertext: bytes) -> str:
    """`SourceInfo.credentials_tag` of a source whose secret is stored as `secret_ciphertext`."""
    return hashlib.blake2b(secret_ciphertext, digest_size=8).hexdigest()


# Logins refused in a row after which a source stops syncing until its password changes.
AUTH_ATTEMPTS_BEFORE_STOP = 3


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    is_admin: bool
    dedupe_across_sources: bool
    created_at: datetime


@dataclass(frozen=True)
class IdentityInfo:
    id: int
    user_id: int
    address: str
    display_name: str
    source_id: int | None
    is_default: bool
    relay_host: str = ""
    relay_port: int = 587
    relay_security: str = "starttls"
    relay_username: str = ""
    # Whether the identity has a relay secret of its own (else the source's is used).
    has_relay_secret: bool = False
    relay_options: dict[str, Any] = field(default_factory=dict)
    save_to_source_sent: bool = False


@dataclass(frozen=True)
class RelayTarget:
    """How to relay as one identity, secret included: for the relay worker only."""

    identity_id: int
    address: str
    host: str
    port: int
    security: str
    username: str
    secret: str = field(repr=False)
    options: dict[str, Any]
    # The IMAP source whose Sent folder also gets a copy, when the identity asks for it.
    sent_copy_source: SourceInfo | None
    # Set when the relay logs in with this OAuth2 source's access token (XOAUTH2): then
    # `secret` is empty until the worker fills in a current token.
    oauth_source: SourceInfo | None = None


@dataclass(frozen=True)
class StoredBlob:
    """A message file already durable in the blob store (`write_outbound_blob`)."""

    blob_hash: str
    size: int


@dataclass(frozen=True)
class OutboundSubmission:
    """One accepted message for the outbound queue (`queue_outbound_messages`)."""

    user_id: int
    identity_id: int
    sender: str
    recipients: tuple[str, ...]
    blob: StoredBlob
    message_id_header: str


@dataclass(frozen=True)
class OutboundInfo:
    """A queue entry as operators, the admin API and the relay worker see it."""

    id: int
    user_id: int
    identity_id: int | None
    sender: str
    recipients: tuple[str, ...]
    blob_hash: str
    size: int
    message_id_header: str
    state: str
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    upstream_reply: str | None


@dataclass(frozen=True)
class SourceInfo:
    """A source as anyone outside the store sees it: never with its secret."""

    id: int
    user_id: int
    name: str
    protocol: str
    host: str
    port: int
    security: str
    username: str
    options: dict[str, Any]
    poll_interval: int
    enabled: bool
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_class: str | None
    consecutive_failures: int
    next_run_at: datetime | None
    messages_fetched: int
    bytes_fetched: int
    removals_not_propagated: int = 0
    # The owner's name, so a log line can say `user/source` (`label`).
    user_name: str = ""
    # Changes whenever the password is set (a digest of its ciphertext, which Fernet makes
    # new at every encryption) and tells nothing about it: what a push watcher waiting out a
    # refused login compares to reconnect at once after `source passwd`. For an OAuth2 source
    # also after a new grant, and after a refresh that rotated the refresh token.
    credentials_tag: str = ""
    # "password" or "oauth2" (then `oauth_provider` names the configured provider).
    auth_method: str = "password"
    oauth_provider: str | None = None
    oauth_scopes: str = ""

    @property
    def label(self) -> str:
        """`user/source`: how log lines and the CLI name a source for a person."""
        return f"{self.user_name or self.user_id}/{self.name}"

    @property
    def credentials_rejected(self) -> bool:
        """Login refused often enough in a row that syncing stops until the password
        changes: providers lock accounts that keep retrying a wrong one."""
        return self.reconnect_needed or (
            self.last_error_class == "auth"
            and self.consecutive_failures >= AUTH_ATTEMPTS_BEFORE_STOP
        )

    @property
    def reconnect_needed(self) -> bool:
        """The OAuth2 grant was revoked or expired: nothing is retried until the account is
        connected again (that clears the failure count)."""
        return self.last_error_class == "reconnect" and self.consecutive_failures > 0


@dataclass(frozen=True)
class OAuthGrant:
    """An OAuth2 source's tokens, decrypted: for the token manager only."""

    source_id: int
    provider: str
    scopes: str
    refresh_token: str = field(repr=False)
    access_token: str | None = field(repr=False)
    access_expires_at: datetime | None


@dataclass(frozen=True)
class MailboxInfo:
    id: int
    user_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    noselect: bool = False  # RFC 3501 §6.3.4: a deleted parent kept for its inferiors


@dataclass(frozen=True)
class MailboxStatus:
    """The counters STATUS and SELECT report (RFC 3501 §6.3.10, RFC 7162 §3.1.2)."""

    mailbox: MailboxInfo
    messages: int
    unseen: int
    size: int

    @property
    def uidnext(self) -> int:
        return self.mailbox.uidnext

    @property
    def uidvalidity(self) -> int:
        return self.mailbox.uidvalidity

    @property
    def highestmodseq(self) -> int:
        return self.mailbox.highestmodseq


class EntryInfo(NamedTuple):
    """One message in one mailbox, as a session keeps it in memory.

    A NamedTuple rather than a frozen dataclass: SELECT and STORE build ten thousand at a time,
    and a tuple is several times cheaper to create.
    """

    uid: int
    message_id: int
    flags: int
    keywords: frozenset[str]
    modseq: int

    @property
    def flag_names(self) -> list[str]:
        return flag_names(self.flags, self.keywords)


@dataclass(frozen=True)
class MessageInfo:
    """Immutable content metadata of a message, precomputed at ingest."""

    id: int
    blob_hash: str
    size: int
    internal_date: datetime
    sent_date: datetime | None
    envelope: bytes
    bodystructure: bytes
    body: bytes
    parts_json: str


@dataclass(frozen=True)
class AppendResult:
    mailbox_id: int
    uidvalidity: int
    uid: int
    message_id: int
    duplicate: bool = False
    # The message joined an entry the mailbox already had (see `NewMessage.adopt`).
    adopted: bool = False


@dataclass(frozen=True)
class FlagUpdate:
    """Outcome of `set_flags`: new state of every matched entry, and CONDSTORE failures."""

    entries: list[EntryInfo]
    modseq: int
    # RFC 7162 §3.1.3: UIDs whose MODSEQ exceeded UNCHANGEDSINCE and were left alone.
    modified: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CopyResult:
    """RFC 4315 COPYUID data: target UIDVALIDITY and the source→target UID pairs."""

    uidvalidity: int
    uid_pairs: list[tuple[int, int]]
    expunged: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class ChangeInfo:
    modseq: int
    uid: int
    kind: str
    flags: int
    keywords: frozenset[str]
    actor: str


@dataclass(frozen=True)
class ApiTokenInfo:
    """An API token as its owner sees it: name and dates, never the token."""

    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class SyncRunInfo:
    """One finished sync of a source (the panel's per-source chart)."""

    source_id: int
    finished_at: datetime
    seconds: float
    fetched: int
    bytes: int
    error_class: str | None
