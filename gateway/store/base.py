"""State shared by every group of store operations, and ORM → view conversions."""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

from sqlalchemy import bindparam, delete, text, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from gateway.oauth2.providers import ProviderRegistry
from gateway.store.blobs import BlobStore
from gateway.store.database import Database
from gateway.store.errors import NotFoundError
from gateway.store.flags import decode_keywords
from gateway.store.models import Mailbox, MailboxEntry, Message, ServerState, Source, User
from gateway.store.notices import queue_change_notice
from gateway.store.passwords import VerifiedPasswordCache
from gateway.store.secrets_box import SecretBox
from gateway.store.tables import MAILBOXES
from gateway.store.views import (
    EntryInfo,
    MailboxInfo,
    SourceInfo,
    SyncRunInfo,
    UserInfo,
    credentials_tag,
)

log = logging.getLogger("gateway.store")

# Called after a commit that changed a mailbox: (user_id, mailbox_id, highestmodseq).
# (user id, mailbox id, new HIGHESTMODSEQ, actor of the change)
ChangeListener = Callable[[int, int, int, str], None]
# Called after a timed sync of a source was recorded (metrics).
SyncListener = Callable[[SyncRunInfo], None]


# Fewer new messages than this are not worth starting workers ahead of time for.
WARM_WORKERS_AT = 100
# Smaller batches are handled in this process: shipping them to a worker costs more than it saves.
POOL_MIN_BATCH = 8


class StoreBase:
    """Owns the database, the blob directory and the secret box; nothing else may touch them."""

    def __init__(
        self,
        *,
        database: Database,
        blobs: BlobStore,
        secrets: SecretBox,
        max_message_size: int = 64 * 1024 * 1024,
        ingest_workers: int = 0,
    ) -> None:
        self.database = database
        self._ingest_workers = ingest_workers
        self._pool: ProcessPoolExecutor | None = None
        self._warmed_pool: ProcessPoolExecutor | None = None  # the pool last started ahead
        self._pool_used_at = 0.0
        self._pool_lock = threading.Lock()
        self.blobs = blobs
        self._secrets = secrets
        self.max_message_size = max_message_size
        self._listeners: list[ChangeListener] = []
        self._sync_listeners: list[SyncListener] = []
        self._verified_passwords = VerifiedPasswordCache()
        # The OAuth2 providers the operator configured: open_store sets them from settings.
        # Here because the store reaches every fetcher that may have to refresh a token.
        self.oauth2_providers = ProviderRegistry([])

    def _analysis_pool(self) -> ProcessPoolExecutor | None:
        """Worker processes for bulk message analysis, started on first use (None: inline)."""
        if self._ingest_workers <= 0:
            return None
        with self._pool_lock:
            self._pool_used_at = time.monotonic()
            if self._pool is None:
                # Not fork: this process holds threads and database connections. A forkserver
                # that has imported only the worker module forks workers that start fast and
                # stay small (each still re-imports the main module: gateway/__main__.py is
                # kept light for that reason).
                from gateway.ingest_worker import WORKER_MODULE, start_worker

                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([WORKER_MODULE])
                self._pool = ProcessPoolExecutor(
                    max_workers=self._ingest_workers,
                    mp_context=context,
                    initializer=start_worker,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def release_idle_workers(self, idle_seconds: float) -> bool:
        """Stop the worker processes if no ingest or indexing used them for `idle_seconds`
        (they hold ~35 MB each); the next bulk ingest starts them again. Returns whether it
        stopped them."""
        with self._pool_lock:
            pool = self._pool
            if pool is None or time.monotonic() - self._pool_used_at < idle_seconds:
                return False
            self._pool = None
        pool.shutdown(wait=True, cancel_futures=True)
        log.info("event=ingest_workers_stopped reason=idle idle_seconds=%.0f", idle_seconds)
        return True

    def warm_ingest_workers(self, messages: int) -> None:
        """Start the worker processes in the background if `messages` are about to arrive;
        returns at once. A fetcher calls this before its login or metadata round trips, which
        then overlap the workers' start-up instead of waiting for it: starting the forkserver
        and forking from it blocked the sync's thread for 0.2-0.5 s (py-spy, issue 17)."""
        if messages < WARM_WORKERS_AT:
            return
        pool = self._analysis_pool()
        if pool is None or self._warmed_pool is pool:
            return
        self._warmed_pool = pool
        threading.Thread(
            target=self._start_workers, args=(pool,), name="ingest-warm", daemon=True
        ).start()

    def _start_workers(self, pool: ProcessPoolExecutor) -> None:
        from gateway.ingest_worker import worker_ready

        # A broken or shut-down pool is left alone here: the ingest that uses it next finds
        # out on its own thread and starts a fresh one (shutting it down from this thread
        # could fail that ingest's submit midway).
        with contextlib.suppress(BrokenProcessPool, RuntimeError):
            for _ in range(self._ingest_workers):
                pool.submit(worker_ready)

    def _drop_broken_pool(self) -> None:
        # A worker died (the OOM killer, an operator's kill): the next use starts a fresh pool.
        log.warning("event=ingest_workers_broken action=restart")
        self.shutdown_workers()

    def shutdown_workers(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def check_database(self) -> None:
        """Raise unless the database answers a trivial query (readiness probes)."""
        with self.database.read() as session:
            session.execute(text("SELECT 1"))

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Register a callback run after every commit that changes a mailbox (IDLE wake-ups)."""
        self._listeners.append(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        self._listeners.remove(listener)

    def _notify(self, changed: dict[int, tuple[int, int]], actor: str) -> None:
        """`changed` maps mailbox_id → (user_id, highestmodseq), announced after commit with
        who made the change (write-back ignores a sync engine's own)."""
        for mailbox_id, (user_id, modseq) in changed.items():
            for listener in list(self._listeners):
                try:
                    listener(user_id, mailbox_id, modseq, actor)
                except Exception:
                    log.exception("event=change_listener_failed mailbox_id=%s", mailbox_id)

    # --- lookups shared by several operation groups -------------------------------------

    @staticmethod
    def _user_by_name(session: Session, name: str) -> User:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise NotFoundError(f"no such user: {name}")
        return user

    @staticmethod
    def _mailbox(session: Session, mailbox_id: int) -> Mailbox:
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise NotFoundError(f"no such mailbox: {mailbox_id}")
        return mailbox

    @staticmethod
    def _lock_mailboxes(session: Session, *mailbox_ids: int) -> dict[int, Mailbox]:
        """Lock mailbox rows (ascending id, so two writers never deadlock) before reading
        entries to change: a concurrent expunge then cannot delete rows under our feet.

        SQLite ignores FOR UPDATE; its writers are already serialised by BEGIN IMMEDIATE.
        """
        wanted = sorted(set(mailbox_ids))
        rows = session.exec(
            select(Mailbox)
            .where(col(Mailbox.id).in_(wanted))
            .order_by(col(Mailbox.id))
            .with_for_update()
        ).all()
        found = {row.id: row for row in rows if row.id is not None}
        for mailbox_id in wanted:
            if mailbox_id not in found:
                raise NotFoundError(f"no such mailbox: {mailbox_id}")
        return found

    @staticmethod
    def _allocate_uidvalidity(session: Session) -> int:
        row = session.exec(
            update(ServerState)
            .where(col(ServerState.id) == 1)
            .values(next_uidvalidity=col(ServerState.next_uidvalidity) + 1)
            .returning(col(ServerState.next_uidvalidity))
        ).first()
        if row is None:
            raise RuntimeError("server_state row missing: run `gateway migrate`")
        return int(row[0]) - 1

    def _bump_mailbox(self, session: Session, mailbox_id: int, uids: int) -> tuple[int, int]:
        """Reserve `uids` new UIDs and one new MODSEQ; returns (first_uid, modseq).

        The single UPDATE holds the row lock until commit, so concurrent writers to one mailbox
        serialise here and UIDs and MODSEQs strictly ascend (DESIGN invariant 3). It runs on
        the session's connection through a bare cursor: every APPEND and STORE makes it.
        """
        rows = self.database.raw_query(_BUMP_MAILBOX).run(
            session.connection(), {"target": mailbox_id, "uids": uids}
        )
        if not rows:
            raise NotFoundError(f"no such mailbox: {mailbox_id}")
        uidnext, modseq = int(rows[0][0]), int(rows[0][1])
        # A Core UPDATE leaves ORM objects alone: a Mailbox this session already loaded
        # (locked for a copy, renamed) must show the new counters too.
        loaded = session.identity_map.get(identity_key(Mailbox, mailbox_id))
        if loaded is not None:
            set_committed_value(loaded, "uidnext", uidnext)
            set_committed_value(loaded, "highestmodseq", modseq)
        queue_change_notice(session, mailbox_id, modseq)
        return uidnext - uids, modseq

    @staticmethod
    def _delete_unreferenced_messages(session: Session, message_ids: set[int]) -> None:
        """Drop message rows no mailbox refers to any more; their blob files go to GC."""
        for chunk in chunked_ids(sorted(message_ids)):
            still_used = set(
                session.exec(
                    select(MailboxEntry.message_id).where(col(MailboxEntry.message_id).in_(chunk))
                )
            )
            orphans = [message_id for message_id in chunk if message_id not in still_used]
            if orphans:
                session.execute(delete(Message).where(col(Message.id).in_(orphans)))


def change_row(
    *,
    mailbox_id: int,
    modseq: int,
    uid: int,
    kind: str,
    flags: int,
    keywords: str,
    actor: str,
    now: datetime,
) -> dict[str, object]:
    """One row of the `changes` log, for bulk inserts."""
    return {
        "mailbox_id": mailbox_id,
        "modseq": modseq,
        "uid": uid,
        "kind": kind,
        "flags": flags,
        "keywords": keywords,
        "actor": actor,
        "created_at": now,
    }


def appended_rows(
    *,
    mailbox_id: int,
    uid: int,
    message_id: int,
    flags: int,
    keywords: str,
    modseq: int,
    actor: str,
    now: datetime,
) -> tuple[dict[str, object], dict[str, object]]:
    """The `mailbox_entries` row and its `changes` row for a message entering a mailbox."""
    entry = {
        "mailbox_id": mailbox_id,
        "uid": uid,
        "message_id": message_id,
        "flags": flags,
        "keywords": keywords,
        "modseq": modseq,
    }
    change = change_row(
        mailbox_id=mailbox_id,
        modseq=modseq,
        uid=uid,
        kind="append",
        flags=flags,
        keywords=keywords,
        actor=actor,
        now=now,
    )
    return entry, change


def chunked_ids(values: list[int], size: int = 500) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def user_view(user: User) -> UserInfo:
    assert user.id is not None  # noqa: S101
    return UserInfo(
        id=user.id,
        name=user.name,
        is_admin=user.is_admin,
        dedupe_across_sources=user.dedupe_across_sources,
        created_at=user.created_at,
    )


def mailbox_view(mailbox: Mailbox) -> MailboxInfo:
    assert mailbox.id is not None  # noqa: S101
    return MailboxInfo(
        id=mailbox.id,
        user_id=mailbox.user_id,
        name=mailbox.name,
        special_use=mailbox.special_use,
        uidvalidity=mailbox.uidvalidity,
        uidnext=mailbox.uidnext,
        highestmodseq=mailbox.highestmodseq,
        noselect=mailbox.noselect,
    )


_NO_KEYWORDS: frozenset[str] = frozenset()


def entry_info(uid: int, message_id: int, flags: int, keywords: str, modseq: int) -> EntryInfo:
    """An entry from its column values (keywords as stored text); the one place that builds
    them, whether from ORM objects or bare rows."""
    return EntryInfo(
        uid=uid,
        message_id=message_id,
        flags=flags,
        keywords=decode_keywords(keywords) if keywords else _NO_KEYWORDS,
        modseq=modseq,
    )


def entry_view(entry: MailboxEntry) -> EntryInfo:
    return entry_info(entry.uid, entry.message_id, entry.flags, entry.keywords, entry.modseq)


def source_view(source: Source, user_name: str) -> SourceInfo:
    assert source.id is not None  # noqa: S101
    return SourceInfo(
        user_name=user_name,
        id=source.id,
        user_id=source.user_id,
        name=source.name,
        protocol=source.protocol,
        host=source.host,
        port=source.port,
        security=source.security,
        username=source.username,
        options=json.loads(source.options_json),
        poll_interval=source.poll_interval,
        enabled=source.enabled,
        last_attempt_at=source.last_attempt_at,
        last_success_at=source.last_success_at,
        last_error=source.last_error,
        last_error_class=source.last_error_class,
        consecutive_failures=source.consecutive_failures,
        next_run_at=source.next_run_at,
        messages_fetched=source.messages_fetched,
        bytes_fetched=source.bytes_fetched,
        removals_not_propagated=source.removals_not_propagated,
        credentials_tag=credentials_tag(source.secret_ciphertext),
        auth_method=source.auth_method,
        oauth_provider=source.oauth_provider,
        oauth_scopes=source.oauth_scopes,
    )


# Built once, Core rather than ORM: every APPEND, COPY and ingest batch runs it, and the ORM's
# bulk-update machinery cost more than the UPDATE itself (~0.2 ms of a single APPEND).
_BUMP_MAILBOX = (
    update(MAILBOXES)
    .where(MAILBOXES.c.id == bindparam("target"))
    .values(
        uidnext=MAILBOXES.c.uidnext + bindparam("uids"),
        highestmodseq=MAILBOXES.c.highestmodseq + 1,
    )
    .returning(MAILBOXES.c.uidnext, MAILBOXES.c.highestmodseq)
)
