"""POP3 sync of one source: list, fetch what is new (streamed), apply retention, QUIT.

Blocking by design (poplib); the scheduler runs it in a thread. Order of events per message
(DESIGN invariants 1 and 2): RETR → blob fsynced → row and origin committed → only then may
the message be chosen for DELE, and deletions take effect only at QUIT (RFC 1939 §6). A sync
cut short anywhere leaves every committed message known by its origin, so the next one
fetches only what is still missing.
"""

from __future__ import annotations

import logging
import poplib
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.fetch.actors import sync_actor
from gateway.fetch.batching import POP3_BATCHES, is_streamed, runs_of_batches, split_batches
from gateway.fetch.connections import Authenticator, open_pop3
from gateway.fetch.errors import SyncError, server_text
from gateway.fetch.keywords import source_keyword, tag_adopted
from gateway.fetch.pop3_listing import Listing, content_hash_of, list_messages
from gateway.fetch.pop3_wire import (
    Reply,
    command,
    iter_multiline,
    network_step,
    pipelined,
    read_multiline,
    read_status,
)
from gateway.fetch.prefetch import Prefetcher
from gateway.fetch.retention import messages_to_delete, retention_policy
from gateway.fetch.source_auth import authenticator_for
from gateway.store import (
    AdoptRule,
    AppendResult,
    MailStore,
    NewMessage,
    OriginKey,
    SourceInfo,
)

log = logging.getLogger("gateway.fetch")

PIPELINE_DEPTH = 32

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SyncReport:
    """What one sync of a source did."""

    source_id: int
    listed: int
    fetched: int
    bytes: int
    # Messages the user already had through another account, now also this source's.
    adopted: int
    adopted_bytes: int
    deleted: int
    already_stored: int
    skipped_too_large: int
    content_keyed: bool
    pipelined: bool
    seconds: float


@dataclass
class _Progress:
    fetched: int = 0
    bytes: int = 0
    adopted: int = 0
    adopted_bytes: int = 0
    duplicates: int = 0
    stored_keys: set[str] = field(default_factory=set)


class PartialSyncError(SyncError):
    """A sync failed after storing some messages: they stay stored and are counted here."""

    def __init__(self, error: SyncError, *, fetched: int, bytes_stored: int) -> None:
        super().__init__(error.error_class, error.message)
        self.fetched = fetched
        self.bytes_stored = bytes_stored


def sync_pop3_source(
    store: MailStore,
    source: SourceInfo,
    *,
    now: datetime | None = None,
    authenticator: Authenticator | None = None,
    on_progress: ProgressCallback | None = None,
) -> SyncReport:
    """Fetch every message of a POP3 source not yet stored into the user's INBOX.

    `now` is the clock for the delete-after-N-days policy (injectable for tests);
    `on_progress(fetched, bytes)` runs after every durable batch (lease check, metrics).
    Raises `SyncError` (a `PartialSyncError` when some messages were stored first).
    """
    started = time.monotonic()
    policy = retention_policy(source.options)
    if authenticator is None:
        authenticator = authenticator_for(store, source)
    inbox = store.get_mailbox(user_id=source.user_id, name="INBOX")
    fetcher = _Fetcher(store, source, inbox.id, on_progress)
    client = open_pop3(source, authenticator)
    try:
        depth = PIPELINE_DEPTH if "PIPELINING" in _capabilities(client) else 1
        listing = list_messages(client, depth=depth)
        known = store.known_uidls(source_id=source.id)
        wanted, too_large = _select_new(listing, known, store.max_message_size, source.label)
        store.warm_ingest_workers(len(wanted))
        fetcher.fetch(client, wanted, listing, depth=depth)
        stored = known | fetcher.progress.stored_keys
        first_seen = (
            store.origin_first_seen(source_id=source.id)
            if policy.mode == "delete_after_days"
            else {}
        )
        doomed = messages_to_delete(
            policy,
            keys=listing.keys,
            stored=stored,
            first_seen=first_seen,
            now=now or datetime.now(UTC),
        )
        _delete_and_quit(client, doomed, depth=depth)
    except SyncError as error:
        client.close()
        progress = fetcher.progress
        if progress.fetched:
            raise PartialSyncError(
                error, fetched=progress.fetched, bytes_stored=progress.bytes
            ) from None
        raise
    except BaseException:
        client.close()
        raise
    report = SyncReport(
        source_id=source.id,
        listed=len(listing.sizes),
        fetched=fetcher.progress.fetched,
        bytes=fetcher.progress.bytes,
        adopted=fetcher.progress.adopted,
        adopted_bytes=fetcher.progress.adopted_bytes,
        deleted=len(doomed),
        already_stored=len(listing.sizes)
        - len(wanted)
        - too_large
        + fetcher.progress.duplicates
        + fetcher.progress.adopted,
        skipped_too_large=too_large,
        content_keyed=listing.content_keyed,
        pipelined=depth > 1,
        seconds=time.monotonic() - started,
    )
    log.info(
        "event=pop3_sync_done source=%s source_id=%d listed=%d fetched=%d bytes=%d adopted=%d "
        "deleted=%d seconds=%.2f",
        fetcher.label,
        source.id,
        report.listed,
        report.fetched,
        report.bytes,
        report.adopted,
        report.deleted,
        report.seconds,
    )
    return report


def _capabilities(client: poplib.POP3) -> dict[str, list[str]]:
    """RFC 2449 CAPA after login (capabilities may change with authentication)."""
    try:
        with network_step():
            return client.capa()
    except SyncError as error:
        if error.error_class == "protocol":
            return {}  # an RFC 1939-only server: no CAPA, so no PIPELINING either
        raise


def _select_new(
    listing: Listing, known: set[str], max_size: int, label: str
) -> tuple[list[int], int]:
    wanted: list[int] = []
    too_large = 0
    for number in sorted(listing.sizes):
        if listing.keys[number] in known:
            continue
        if listing.sizes[number] > max_size:
            # Left on the server (never deleted: it was never stored) and reported.
            too_large += 1
            log.warning(
                "event=pop3_message_too_large source=%s size=%d limit=%d",
                label,
                listing.sizes[number],
                max_size,
            )
            continue
        wanted.append(number)
    return wanted, too_large


class _Fetcher:
    """RETRs the wanted messages in order and commits them in durable batches."""

    def __init__(
        self,
        store: MailStore,
        source: SourceInfo,
        mailbox_id: int,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.store = store
        self.source = source
        self.mailbox_id = mailbox_id
        self.flags = (source_keyword(source.name),)
        self.actor = sync_actor(source.id)
        self.on_progress = on_progress
        # A message already in INBOX through another account (a CC to both) is not copied.
        self.label = source.label
        dedupe = store.get_user_by_id(user_id=source.user_id).dedupe_across_sources
        self.adopt: AdoptRule | None = "message-id" if dedupe else None
        self.progress = _Progress()
        # (origin key, size) of each batch handed to the store, oldest first: results come
        # back in the same order.
        self._in_flight: deque[list[tuple[str, int]]] = deque()

    def fetch(
        self, client: poplib.POP3, wanted: Sequence[int], listing: Listing, *, depth: int
    ) -> None:
        commands = [command("RETR", number) for number in wanted]
        replies = pipelined(client, commands, depth=depth)
        # The reply stream is strictly sequential: a streamed message must be fully read into
        # its blob before the next reply is touched, so each one goes through the store alone;
        # runs of small messages are group-committed, analysed by the workers while the
        # next batch is read (append_message_batches).
        planned = split_batches(((n, listing.sizes[n]) for n in wanted), POP3_BATCHES)
        for run in runs_of_batches(planned, lambda number: listing.sizes[number]):
            if len(run) == 1 and len(run[0]) == 1 and is_streamed(listing.sizes[run[0][0]]):
                self._fetch_streamed(client, replies, run[0][0], listing)
                continue
            # Read on another thread while this one commits (as IMAP's prefetch): the reply
            # stream is only touched there until the run is read.
            with Prefetcher(
                lambda numbers: self._read_batch(client, replies, numbers, listing), run
            ) as batches:
                committed = self.store.append_message_batches(
                    batches=(batch for batch in batches if batch),
                    actor=self.actor,
                    defer_search_text=True,
                )
                for results in committed:
                    self._account(results, self._in_flight.popleft())

    def _read_batch(
        self,
        client: poplib.POP3,
        replies: Iterator[Reply],
        numbers: Sequence[int],
        listing: Listing,
    ) -> list[NewMessage]:
        """One planned batch read from the reply stream (a refused RETR just leaves a
        message out; a batch left empty is not handed to the store)."""
        batch: list[NewMessage] = []
        meta: list[tuple[str, int]] = []
        for number in numbers:
            if not self._reply_ok(replies, number):
                continue
            content = read_multiline(client)
            batch.append(self._new_message(number, content, listing))
            meta.append((listing.keys[number], len(content)))
        if batch:
            self._in_flight.append(meta)
        return batch

    def _reply_ok(self, replies: Iterator[Reply], number: int) -> bool:
        reply = next(replies)
        if not reply.ok:
            # Gone since LIST (deleted by another session on a lenient server): nothing to
            # fetch, and nothing to delete either.
            log.warning(
                "event=pop3_retr_refused source=%s number=%d reply=%s",
                self.label,
                number,
                server_text(reply.status),
            )
        return reply.ok

    def _fetch_streamed(
        self, client: poplib.POP3, replies: Iterator[Reply], number: int, listing: Listing
    ) -> None:
        if not self._reply_ok(replies, number):
            return
        counter = _ByteCounter(iter_multiline(client))
        results = self.store.append_messages(
            items=[self._new_message(number, counter, listing)],
            actor=self.actor,
            defer_search_text=True,
        )
        self._account(results, [(listing.keys[number], counter.total)])

    def _new_message(
        self, number: int, content: bytes | Iterable[bytes], listing: Listing
    ) -> NewMessage:
        key = listing.keys[number]
        origin = OriginKey(self.source.id, uidl=key, content_hash=content_hash_of(key))
        return NewMessage(
            mailbox_id=self.mailbox_id,
            content=content,
            flags=self.flags,
            origin=origin,
            adopt=self.adopt,
        )

    def _account(self, results: list[AppendResult], meta: list[tuple[str, int]]) -> None:
        """Count a durable batch: from here on its keys may be deleted at the source."""
        progress = self.progress
        joined: list[int] = []
        for result, (key, size) in zip(results, meta, strict=True):
            progress.stored_keys.add(key)
            if result.adopted:
                # Already there through another account: it is this source's message too.
                progress.adopted += 1
                progress.adopted_bytes += size
                joined.append(result.uid)
            elif result.duplicate:
                progress.duplicates += 1
            else:
                progress.fetched += 1
                progress.bytes += size
        tag_adopted(self.store, self.mailbox_id, joined, self.flags[0], self.actor)
        log.info(
            "event=pop3_batch_stored source=%s fetched=%d bytes=%d",
            self.label,
            progress.fetched,
            progress.bytes,
        )
        if self.on_progress is not None:
            self.on_progress(progress.fetched, progress.bytes)


class _ByteCounter:
    """Passes chunks through, counting them (the size of a streamed message)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.total += len(chunk)
            yield chunk


def _delete_and_quit(client: poplib.POP3, numbers: Sequence[int], *, depth: int) -> None:
    """DELE what retention allows, then QUIT: the server removes them only now (UPDATE
    state, RFC 1939 §6); a -ERR to QUIT means some were not removed."""
    if numbers:
        log.info("event=pop3_deleting count=%d", len(numbers))
    commands = [command("DELE", number) for number in numbers]
    for reply in pipelined(client, commands, depth=depth):
        if not reply.ok:
            raise SyncError("protocol", f"DELE refused: {server_text(reply.status)}")
    with network_step():
        client.sock.sendall(command("QUIT"))
        try:
            read_status(client)
        finally:
            client.close()
