"""The store facade: every operation group on one object, and how to open it from settings."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from gateway.oauth2.providers import ProviderRegistry
from gateway.settings import Settings
from gateway.store.admin_access import AdminAccessOperations
from gateway.store.blobs import BlobStore
from gateway.store.change_feed import ChangeFeedOperations
from gateway.store.database import Database, create_database_engine
from gateway.store.fetch_data import FetchDataOperations
from gateway.store.file_modes import make_private_dir, make_private_sqlite_file
from gateway.store.identities import IdentityOperations
from gateway.store.ingest import IngestOperations
from gateway.store.login_failures import LoginFailureOperations
from gateway.store.mailbox_sync import MailboxSyncOperations
from gateway.store.mailboxes import MailboxOperations
from gateway.store.messages import MessageOperations
from gateway.store.migrations import head_revision, upgrade_database
from gateway.store.oauth_grants import OAuthGrantOperations
from gateway.store.outbound import OutboundOperations
from gateway.store.outbound_counts import OutboundCountOperations
from gateway.store.search_data import SearchDataOperations
from gateway.store.search_index import SearchIndexOperations
from gateway.store.secrets_box import SecretBox, load_or_create_key
from gateway.store.source_sync import SourceSyncOperations
from gateway.store.sources import SourceOperations
from gateway.store.sync_state import SyncStateOperations
from gateway.store.table_names import SCHEMA_VERSION_QUERY
from gateway.store.user_admin import UserAdminOperations
from gateway.store.users import UserOperations

log = logging.getLogger("gateway.store")


class MailStore(
    UserOperations,
    UserAdminOperations,
    IdentityOperations,
    OutboundOperations,
    OutboundCountOperations,
    SourceOperations,
    MailboxOperations,
    IngestOperations,
    SourceSyncOperations,
    MessageOperations,
    MailboxSyncOperations,
    FetchDataOperations,
    SearchDataOperations,
    SearchIndexOperations,
    ChangeFeedOperations,
    SyncStateOperations,
    AdminAccessOperations,
    LoginFailureOperations,
    OAuthGrantOperations,
):
    """Users, sources, mailboxes and messages, with durable ingest and a change log."""

    def close(self) -> None:
        self.shutdown_workers()
        self.blobs.close()
        self.database.dispose()


def open_store(settings: Settings, *, migrate: bool = True) -> MailStore:
    """Open (and by default migrate) the store described by `settings`.

    Migrating costs nothing when the schema is already at the newest revision: that is read
    from the database before Alembic is even imported.
    """
    make_private_dir(settings.data_dir)
    make_private_dir(settings.blob_dir)
    url = settings.resolved_database_url()
    sqlite_file = sqlite_path(url)
    if sqlite_file is not None:
        make_private_sqlite_file(sqlite_file)
    engine = create_database_engine(url, pool_size=settings.io_threads)
    if migrate and not _schema_is_current(engine):
        log.info("event=schema_upgrade target=%s", head_revision() or "head")
        upgrade_database(url)
    store = MailStore(
        database=Database(engine),
        blobs=open_blob_store(settings),
        secrets=SecretBox(load_or_create_key(settings.secret_key, settings.data_dir)),
        max_message_size=settings.max_message_size,
        ingest_workers=settings.resolved_ingest_workers(),
    )
    store.oauth2_providers = ProviderRegistry.from_settings(settings)
    return store


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob directory, or the object store named by `blob_url` with a local cache."""
    if not settings.blob_url:
        return BlobStore(settings.blob_dir)
    from gateway.store.object_location import ObjectLocation
    from gateway.store.object_store import ObjectStore  # imports boto3: only when used

    objects = ObjectStore(ObjectLocation.parse(settings.blob_url))
    objects.check_bucket()
    return BlobStore(
        settings.blob_dir, objects=objects, cache_bytes=settings.blob_cache_mb * 1024 * 1024
    )


def _schema_is_current(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            found = connection.execute(text(SCHEMA_VERSION_QUERY)).all()
    except SQLAlchemyError:
        return False  # no schema yet
    return [row[0] for row in found] == [head]


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database)
