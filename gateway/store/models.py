"""SQLModel tables: the one schema every part of the gateway shares through the store.

Alembic migrations in `migrations/` are generated from these classes; change both together.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    insert_sentinel,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from gateway.store.table_names import IDENTITIES, SOURCES, USERS


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use timezone-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class ServerState(SQLModel, table=True):
    """Single-row counters that must never repeat across the whole server."""

    __tablename__ = "server_state"
    id: int | None = Field(default=None, primary_key=True)
    # RFC 3501 §2.3.1.1: a re-created mailbox must get a UIDVALIDITY it never had before.
    next_uidvalidity: int = Field(sa_type=BigInteger)
    # Bumped by every change to any source (add, edit, password, remove): schedulers on every
    # replica watch it to pick a change up at once instead of at their next rescan.
    sources_revision: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )


class User(SQLModel, table=True):
    __tablename__ = USERS
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=255)
    password_hash: str
    is_admin: bool = False
    dedupe_across_sources: bool = True
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class Identity(SQLModel, table=True):
    """An address the user may send as, and the source whose SMTP relays it."""

    __tablename__ = IDENTITIES
    __table_args__ = (UniqueConstraint("user_id", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    address: str = Field(max_length=320)
    display_name: str = ""
    source_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("sources.id", ondelete="SET NULL"))
    )
    is_default: bool = False
    # Where mail sent as this address leaves (gateway/smtp/relay.py): the provider's own
    # submission server, so its SPF/DKIM hold. Defaulted from the source (identities.py).
    relay_host: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    relay_port: int = Field(
        default=587, sa_column=Column(Integer, nullable=False, server_default="587")
    )
    relay_security: str = Field(
        default="starttls", sa_column=Column(Text, nullable=False, server_default="starttls")
    )
    relay_username: str = Field(
        default="", sa_column=Column(Text, nullable=False, server_default="")
    )
    # Encrypted like a source's secret; NULL: log in with the source's secret.
    relay_secret_ciphertext: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    # tls_ca_file, tls_fingerprint_sha256, timeout_seconds, allow_plaintext (as for sources).
    relay_options_json: str = Field(
        default="{}", sa_column=Column(Text, nullable=False, server_default="{}")
    )
    # Also APPEND each relayed message to the IMAP source's own Sent folder.
    save_to_source_sent: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class Source(SQLModel, table=True):
    """An external POP3/IMAP account, its encrypted secret and its sync state."""

    __tablename__ = SOURCES
    # AUTOINCREMENT: a removed source's id is never given to a new one (migration 0009).
    __table_args__ = (UniqueConstraint("user_id", "name"), {"sqlite_autoincrement": True})
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    name: str = Field(max_length=255)
    protocol: str = Field(max_length=8)
    host: str = Field(max_length=255)
    port: int
    security: str = Field(max_length=16)
    username: str = Field(max_length=320)
    secret_ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    options_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    poll_interval: int = 60
    enabled: bool = True
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    # Sync state, written by fetch/ and read by the admin panel and metrics.
    last_attempt_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    last_success_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_error_class: str | None = Field(default=None, max_length=32)
    consecutive_failures: int = 0
    next_run_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    messages_fetched: int = Field(default=0, sa_type=BigInteger)
    bytes_fetched: int = Field(default=0, sa_type=BigInteger)
    sync_state_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    # Local deletions the source could not be made to carry out (no Trash and none creatable,
    # expunge without UIDPLUS): the source still holds those messages.
    removals_not_propagated: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # "password": `secret_ciphertext` is the password. "oauth2": it is the refresh token of
    # the grant from `oauth_provider` (a configured provider's name), for `oauth_scopes`;
    # the current access token is cached encrypted too, so replicas share it.
    auth_method: str = Field(
        default="password",
        sa_column=Column(String(16), nullable=False, server_default="password"),
    )
    oauth_provider: str | None = Field(default=None, max_length=64)
    oauth_scopes: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    oauth_access_ciphertext: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    oauth_access_expires_at: datetime | None = Field(
        default=None, sa_column=_timestamp(nullable=True)
    )


class Mailbox(SQLModel, table=True):
    __tablename__ = "mailboxes"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    # Full hierarchical name in Unicode with "/" as separator; INBOX is always spelled "INBOX".
    name: str = Field(max_length=1024)
    special_use: str | None = Field(default=None, max_length=32)
    uidvalidity: int = Field(sa_type=BigInteger)
    uidnext: int = Field(default=1, sa_type=BigInteger)
    highestmodseq: int = Field(default=1, sa_type=BigInteger)
    # RFC 3501 §6.3.4: a deleted mailbox that still has inferiors stays as a \Noselect name.
    noselect: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class Subscription(SQLModel, table=True):
    """A subscribed mailbox name (RFC 3501 §6.3.6): kept apart from `mailboxes`, since a
    subscription outlives the mailbox's deletion (RFC 3501 §6.3.9, RFC 5258 \\NonExistent)."""

    __tablename__ = "subscriptions"
    user_id: int = Field(
        sa_column=Column(
            ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    name: str = Field(max_length=1024, primary_key=True)


class Message(SQLModel, table=True):
    """Immutable content of one message: blob reference plus everything IMAP precomputes."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_user_blob", "user_id", "blob_hash"),
        # Cross-source dedup looks messages up by Message-ID within one user's store.
        Index("ix_messages_user_message_id", "user_id", "message_id_header"),
        Index(
            "ix_messages_search_pending",
            "id",
            sqlite_where=text("search_pending = 1"),
            postgresql_where=text("search_pending"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    blob_hash: str = Field(max_length=64, index=True)
    size: int = Field(sa_type=BigInteger)
    internal_date: datetime = Field(sa_column=_timestamp())
    sent_date: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    message_id_header: str | None = Field(default=None, sa_column=Column(Text))
    subject: str = Field(default="", sa_column=Column(Text, nullable=False))
    from_addr: str = Field(default="", sa_column=Column(Text, nullable=False))
    to_addr: str = Field(default="", sa_column=Column(Text, nullable=False))
    cc_addr: str = Field(default="", sa_column=Column(Text, nullable=False))
    bcc_addr: str = Field(default="", sa_column=Column(Text, nullable=False))
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    bodystructure: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    parts_json: str = Field(sa_column=Column(Text, nullable=False))
    # Fetched mail is stored before its text is decoded for SEARCH (`search_index.py`); until
    # then its MessageText has an empty body_text with body_text_truncated set.
    search_pending: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    # Lets SQLAlchemy insert a whole batch with RETURNING in one statement and still know
    # which id belongs to which row (SQLite does not promise RETURNING order otherwise).
    batch_sentinel: int | None = Field(default=None, sa_column=insert_sentinel("batch_sentinel"))


class MessageText(SQLModel, table=True):
    """The decoded text SEARCH matches, one row per message, apart from `messages`.

    It is most of a message's row bytes (~17 KB against ~2 KB for everything else): kept in
    the same SQLite row it pushed what FETCH reads onto overflow pages, and a `FETCH 1:*
    (BODYSTRUCTURE)` read five pages per message instead of a fraction of one.
    """

    __tablename__ = "message_texts"
    message_id: int = Field(
        sa_column=Column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    )
    header_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    body_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    # body_text holds only the first part of a long text: SEARCH must then read the blob.
    body_text_truncated: bool = False


class MailboxEntry(SQLModel, table=True):
    """A message as it appears in one mailbox: UID, flags, keywords, MODSEQ."""

    __tablename__ = "mailbox_entries"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "uid"),
        Index("ix_mailbox_entries_modseq", "mailbox_id", "modseq"),
    )
    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int = Field(
        sa_column=Column(ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False)
    )
    uid: int = Field(sa_type=BigInteger)
    message_id: int = Field(
        sa_column=Column(ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    flags: int = 0
    keywords: str = Field(default="", sa_column=Column(Text, nullable=False))
    modseq: int = Field(sa_type=BigInteger)


class Origin(SQLModel, table=True):
    """Where a message came from; the idempotency key of every fetch (DESIGN invariant 2).

    Rows outlive the message they point to (message_id set to NULL on delete) so that a message
    deleted locally is never fetched again.
    """

    __tablename__ = "origins"
    __table_args__ = (
        UniqueConstraint("source_id", "remote_folder", "uidvalidity", "remote_uid"),
        UniqueConstraint("source_id", "uidl"),
        Index("ix_origins_content", "source_id", "content_hash"),
    )
    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(
        sa_column=Column(ForeignKey("sources.id", ondelete="CASCADE"), nullable=False)
    )
    message_id: int | None = Field(
        default=None,
        sa_column=Column(ForeignKey("messages.id", ondelete="SET NULL"), index=True),
    )
    remote_folder: str | None = Field(default=None, max_length=1024)
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    remote_uid: int | None = Field(default=None, sa_type=BigInteger)
    uidl: str | None = Field(default=None, max_length=255)
    content_hash: str | None = Field(default=None, max_length=64)
    fetched_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    # IMAP sources: the flags both sides agreed on at the last sync, the base of the three-way
    # merge that tells a local change from a remote one (DESIGN invariant 4).
    synced_flags: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    synced_keywords: str = Field(
        default="", sa_column=Column(Text, nullable=False, server_default="")
    )
    # The local copy left this source's folders and, by the source's options, the remote one
    # stays: the origin is kept (never fetched again) but no longer followed.
    detached: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class SourceFolder(SQLModel, table=True):
    """One folder of an IMAP source: the local mailbox it feeds and how far it is synced."""

    __tablename__ = "source_folders"
    __table_args__ = (UniqueConstraint("source_id", "remote_name"),)
    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(
        sa_column=Column(ForeignKey("sources.id", ondelete="CASCADE"), nullable=False)
    )
    remote_name: str = Field(max_length=1024)
    mailbox_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    )
    uidvalidity: int | None = Field(default=None, sa_type=BigInteger)
    # Every remote UID up to here has been fetched (or is known): the resume point.
    last_uid: int = Field(default=0, sa_type=BigInteger)
    # The source's HIGHESTMODSEQ at the last flag pull (CONDSTORE), 0 when not offered.
    highestmodseq: int = Field(default=0, sa_type=BigInteger)
    # The local mailbox's MODSEQ up to which local changes were written back.
    local_modseq: int = Field(default=0, sa_type=BigInteger)


class Change(SQLModel, table=True):
    """Per-mailbox change log: CONDSTORE/QRESYNC, IDLE wake-ups and write-back read it."""

    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_mailbox_modseq", "mailbox_id", "modseq"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox_id: int = Field(
        sa_column=Column(ForeignKey("mailboxes.id", ondelete="CASCADE"), nullable=False)
    )
    modseq: int = Field(sa_type=BigInteger)
    uid: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=16)
    flags: int = 0
    keywords: str = Field(default="", sa_column=Column(Text, nullable=False))
    # Who made the change ("imap", "smtp", "source:<id>", "cli"): write-back skips its own echoes.
    actor: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())


class OutboundMessage(SQLModel, table=True):
    """A submitted message waiting to be relayed, or the record of its fate (smtp/)."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_due", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    identity_id: int | None = Field(
        default=None, sa_column=Column(ForeignKey("identities.id", ondelete="SET NULL"))
    )
    sender: str = Field(sa_column=Column(Text, nullable=False))
    # JSON list of the recipients still to relay to (fewer after a partial delivery).
    recipients_json: str = Field(sa_column=Column(Text, nullable=False))
    blob_hash: str = Field(max_length=64, index=True)
    size: int = Field(sa_type=BigInteger)
    message_id_header: str = Field(default="", sa_column=Column(Text, nullable=False))
    # queued -> relayed (upstream said 250; Sent copy pending) -> sent; or bounced / dropped.
    state: str = Field(max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_timestamp())
    expires_at: datetime = Field(sa_column=_timestamp())
    created_at: datetime = Field(sa_column=_timestamp())
    finished_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    upstream_reply: str | None = Field(default=None, sa_column=Column(Text))
    lease_owner: str | None = Field(default=None, max_length=128)


class AdminSession(SQLModel, table=True):
    """A browser's login to the admin panel; only the SHA-256 of its cookie is kept."""

    __tablename__ = "admin_sessions"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    expires_at: datetime = Field(sa_column=_timestamp())


class ApiToken(SQLModel, table=True):
    """A script's credential for the admin API; only the SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(
        sa_column=Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    name: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utc_now, sa_column=_timestamp())
    last_used_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class SyncRun(SQLModel, table=True):
    """One finished sync of a source, kept for a couple of days for the panel's charts."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_source_finished", "source_id", "finished_at"),)
    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(
        sa_column=Column(ForeignKey("sources.id", ondelete="CASCADE"), nullable=False)
    )
    finished_at: datetime = Field(sa_column=_timestamp())
    seconds: float
    fetched: int = Field(default=0, sa_type=BigInteger)
    bytes: int = Field(default=0, sa_type=BigInteger)
    error_class: str | None = Field(default=None, max_length=32)


class LoginFailure(SQLModel, table=True):
    """Recent failed logins of one address or one user name, shared by every replica.

    `key` is "address:<ip>" or "user:<name>"; `blocked_until` is when the next attempt on
    that key may be checked (gateway/auth_throttle.py). A "trusted:<name>|<ip>" row marks an
    address the user logged in from; its `blocked_until` is when that trust ends.
    """

    __tablename__ = "login_failures"
    key: str = Field(primary_key=True, max_length=320)
    failures: int = Field(default=0)
    last_failure_at: datetime = Field(sa_column=_timestamp())
    blocked_until: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
