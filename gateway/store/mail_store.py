"""The store facade: every operation group on one object, and how to open it from settings."""

from __future__ import annotations

from gateway.settings import Settings
from gateway.store.blobs import BlobStore
from gateway.store.change_feed import ChangeFeedOperations
from gateway.store.database import Database, create_database_engine
from gateway.store.fetch_data import FetchDataOperations
from gateway.store.ingest import IngestOperations
from gateway.store.mailbox_sync import MailboxSyncOperations
from gateway.store.mailboxes import MailboxOperations
from gateway.store.messages import MessageOperations
from gateway.store.migrations import upgrade_database
from gateway.store.object_store import ObjectLocation, ObjectStore
from gateway.store.search_data import SearchDataOperations
from gateway.store.search_index import SearchIndexOperations
from gateway.store.secrets_box import SecretBox, load_or_create_key
from gateway.store.source_sync import SourceSyncOperations
from gateway.store.sources import SourceOperations
from gateway.store.sync_state import SyncStateOperations
from gateway.store.users import UserOperations


class MailStore(
    UserOperations,
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
):
    """Users, sources, mailboxes and messages, with durable ingest and a change log."""

    def close(self) -> None:
        self.shutdown_workers()
        self.blobs.close()
        self.database.dispose()


def open_store(settings: Settings, *, migrate: bool = True) -> MailStore:
    """Open (and by default migrate) the store described by `settings`."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    if migrate:
        upgrade_database(url)
    engine = create_database_engine(url, pool_size=settings.io_threads)
    return MailStore(
        database=Database(engine),
        blobs=open_blob_store(settings),
        secrets=SecretBox(load_or_create_key(settings.secret_key, settings.data_dir)),
        max_message_size=settings.max_message_size,
        ingest_workers=settings.resolved_ingest_workers(),
    )


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob directory, or the object store named by `blob_url` with a local cache."""
    if not settings.blob_url:
        return BlobStore(settings.blob_dir)
    objects = ObjectStore(ObjectLocation.parse(settings.blob_url))
    objects.check_bucket()
    return BlobStore(
        settings.blob_dir, objects=objects, cache_bytes=settings.blob_cache_mb * 1024 * 1024
    )
