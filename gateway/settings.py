"""Runtime settings, read from GATEWAY_* environment variables and an optional `.env` file.

Settings are built once at start-up and injected; nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob an operator can turn; names are part of the public contract."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(default=Path("./data"), description="Blobs, SQLite file, keys, certs.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite in the data directory."
    )
    blob_url: str | None = Field(
        default=None,
        description="Object storage for blobs, s3://bucket/prefix?endpoint=https://host:port "
        "(credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY); default: the data directory.",
    )
    blob_cache_mb: int = Field(
        default=1024, gt=0, description="Local cache of blob objects, in MiB (with blob_url)."
    )
    bind: str = Field(default="127.0.0.1", description="Address every listener binds to.")
    imap_port: int = Field(default=1143, ge=0, le=65535, description="IMAP with STARTTLS; 0 = off.")
    imaps_port: int = Field(default=1993, ge=0, le=65535, description="IMAP over TLS; 0 = off.")
    submission_port: int = Field(
        default=1587, ge=0, le=65535, description="SMTP submission with STARTTLS; 0 = off."
    )
    smtps_port: int = Field(
        default=1465, ge=0, le=65535, description="SMTP submission over TLS; 0 = off."
    )
    admin_port: int = Field(default=8080, ge=0, le=65535, description="Admin HTTP; 0 = off.")
    admin_session_hours: float = Field(
        default=12.0, gt=0, description="How long a login to the web panel lasts."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, GET /metrics requires `Authorization: Bearer <this token>`.",
    )
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain.")
    tls_key: Path | None = Field(default=None, description="PEM private key.")
    secret_key: str | None = Field(
        default=None,
        description="Key that encrypts source secrets (Fernet, urlsafe base64). "
        "Generated into the data directory on first start when unset.",
    )
    first_admin_password: str | None = Field(
        default=None,
        description="Password of the `admin` user created on first start; random when unset.",
    )
    allow_plaintext: bool = Field(
        default=False, description="Allow authentication without TLS. Local testing only."
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR.")
    max_message_size: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Largest message accepted, in octets."
    )
    ingest_batch_size: int = Field(
        default=200, gt=0, description="Messages per group commit when ingesting in bulk."
    )
    ingest_workers: int | None = Field(
        default=None,
        ge=0,
        description="Processes analysing messages in bulk ingest; unset: one per CPU, 0: inline.",
    )
    imap_connections_per_address: int = Field(
        default=200, gt=0, description="Open IMAP connections allowed from one IP address."
    )
    imap_sessions_per_user: int = Field(
        default=100, gt=0, description="Logged-in IMAP sessions allowed per user."
    )
    imap_autologout_seconds: int = Field(
        default=1800, ge=60, description="Idle time before a logged-in session is closed."
    )
    imap_login_timeout_seconds: int = Field(
        default=60, gt=0, description="Time allowed to log in after connecting."
    )
    imap_tls_handshakes: int = Field(
        default=64, gt=0, description="Implicit-TLS handshakes in progress at once, all addresses."
    )
    imap_tls_handshake_seconds: float = Field(
        default=10.0, gt=0, description="Time a client has to finish the implicit-TLS handshake."
    )
    imap_write_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Time a client may leave server output unread before it is disconnected.",
    )
    imap_search_max_keys: int = Field(
        default=1000, gt=0, description="Search keys one SEARCH command may hold."
    )
    imap_search_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Time one SEARCH may run before it is refused with NO."
    )
    imap_searches_per_user: int = Field(
        default=2,
        gt=0,
        description="SEARCH commands of one user running at once (the rest wait their turn).",
    )
    max_mailboxes_per_user: int = Field(
        default=1000, gt=0, description="Mailboxes one user may have, parents included."
    )
    max_mailbox_depth: int = Field(
        default=20, gt=0, description="Hierarchy levels of one mailbox name (a/b/c is 3)."
    )
    max_mailbox_name_length: int = Field(
        default=1024, gt=0, le=1024, description="Characters in one full mailbox name."
    )
    auth_free_failures: int = Field(
        default=5,
        ge=0,
        description="Failed logins per address and per user name before logins are slowed.",
    )
    auth_max_delay_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest wait imposed between failed logins of one address or user name.",
    )
    auth_failure_window_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Quiet time after which the failed logins of an address or user are forgotten.",
    )
    imap_change_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often IMAP sessions look for changes committed by other processes.",
    )
    io_threads: int = Field(
        default=8, gt=0, description="Worker threads for SQL and disk work off the event loop."
    )
    fetch_enabled: bool = Field(
        default=True,
        description="Run the fetch scheduler and IMAP push watchers inside `gateway serve`.",
    )
    fetch_concurrency: int = Field(default=4, gt=0, description="Sources synced at the same time.")
    fetch_rescan_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the scheduler re-reads the source list for new, changed and due "
        "sources.",
    )
    smtp_hostname: str | None = Field(
        default=None,
        description="Name the SMTP server greets with and puts in bounces; unset: the host's FQDN.",
    )
    smtp_queue_lifetime_seconds: float = Field(
        default=5 * 86400.0,
        gt=0,
        description="How long a message is retried before it bounces (default 5 days).",
    )
    smtp_retry_base_seconds: float = Field(
        default=60.0, gt=0, description="First retry delay; it doubles with each failure."
    )
    smtp_retry_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between two relay attempts."
    )
    smtp_relay_concurrency: int = Field(
        default=20, gt=0, description="Messages relayed at the same time by one process."
    )
    smtp_relay_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Timeout of each network step when relaying."
    )
    smtp_relay_lease_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long a claimed message belongs to one relay worker; after a crash "
        "another worker (or replica) takes it over once this has passed.",
    )
    smtp_connections_per_address: int = Field(
        default=50,
        gt=0,
        description="Open SMTP submission connections allowed from one IP address (Postfix's "
        "smtpd_client_connection_count_limit is 50 too); more get 421 4.7.0.",
    )
    outbound_retention_seconds: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="How long relayed, bounced and dropped messages stay in the outbound queue "
        "(for `gateway queue list` and the panel) before the relay worker deletes them.",
    )
    smtp_queue_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the relay worker looks for due messages (new ones wake it).",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("blob_url")
    @classmethod
    def _check_blob_url(cls, value: str | None) -> str | None:
        if value:
            # Imported here: settings load for every command, most never need it.
            from gateway.store.object_location import ObjectLocation

            ObjectLocation.parse(value)  # BlobUrlError (a ValueError) names what is wrong
        return value

    @property
    def blob_dir(self) -> Path:
        """Blob files, or with `blob_url` the cache of blob objects."""
        return self.data_dir / ("blob-cache" if self.blob_url else "blobs")

    def resolved_ingest_workers(self) -> int:
        if self.ingest_workers is not None:
            return self.ingest_workers
        return os.cpu_count() or 1

    def resolved_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.sqlite3').resolve()}"
