"""The relay worker: claims due queue entries, relays them, retries, bounces, files copies.

The duplicate-send window (docs/architecture.md, "Sending"): between the upstream taking our
end of DATA and the commit of `record_outbound_relayed` a crash loses the fact that the
message left, and it is relayed again once its lease runs out. The window is kept small:
the record is the first thing done after the upstream's 250 (QUIT goes on in the background,
the Sent copies come after), and it is one UPDATE per message, group-committed with those
of the other messages relayed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from gateway.smtp.batching import GroupCommit
from gateway.smtp.bounce import build_bounce
from gateway.smtp.headers import strip_bcc
from gateway.smtp.relay import RelayError, RelayOutcome, relay_message
from gateway.smtp.relay_pool import RelayConnections
from gateway.smtp.source_sent import append_to_source_sent
from gateway.store import MailStore, NotFoundError
from gateway.store.outbound import RELAYED
from gateway.store.views import OutboundInfo, RelayTarget

log = logging.getLogger("gateway.smtp")

# Finished messages are deleted in batches of this many, one transaction each, every hour.
PRUNE_BATCH = 1000
# A queued message whose file is missing this long after its row was written was never
# acknowledged (RFC 5321 §4.5.3.2.6: a client waits 10 minutes at most for the 250).
UNACKNOWLEDGED_AFTER = timedelta(minutes=15)
MISSING_FILE_RETRY = timedelta(seconds=10)
# Bounds the IN list of one claim; the rest of the ready ids wait for the next.
MAX_READY_PER_CLAIM = 500
PRUNE_INTERVAL_SECONDS = 3600.0


class Relay(Protocol):
    def __call__(
        self,
        target: RelayTarget,
        *,
        sender: str,
        recipients: Sequence[str],
        content: bytes,
        local_hostname: str,
        timeout: float,
        connections: RelayConnections,
    ) -> Awaitable[RelayOutcome]: ...


def retry_delay(attempts: int, *, base: float, ceiling: float) -> float:
    """Exponential backoff after the `attempts`-th failure: base, 2x, 4x ... up to ceiling."""
    return min(base * 2.0 ** max(attempts - 1, 0), ceiling)


class RelayWorker:
    def __init__(
        self,
        store: MailStore,
        executor: Executor,
        writer: Executor,
        *,
        hostname: str,
        concurrency: int,
        timeout: float,
        lease: timedelta,
        retry_base: float,
        retry_ceiling: float,
        poll_seconds: float,
        clock: Callable[[], datetime],
        retention: timedelta = timedelta(days=7),
        relay: Relay = relay_message,
    ) -> None:
        self._store = store
        self._executor = executor
        self._writer = writer
        self._hostname = hostname
        self._concurrency = concurrency
        self._timeout = timeout
        self._lease = lease
        self._retry_base = retry_base
        self._retry_ceiling = retry_ceiling
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._relay = relay
        self._retention = retention
        # Sessions to the relays stay open between messages (relay_pool.py).
        self._connections = RelayConnections()
        self._next_prune = 0.0  # monotonic time; the first pass prunes
        # Unique per process: a claim names its holder, so a late finisher cannot overwrite
        # the work of a worker that took the message over after the lease ran out.
        self.owner = f"relay-{secrets.token_hex(6)}"
        self._wake = asyncio.Event()
        # Accepted messages still held in the queue (`queue_outbound_messages`): claimed by
        # id. Lost in a crash, they become due when the hold ends.
        self._ready: set[int] = set()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._relaying: dict[int, asyncio.Task[None]] = {}
        self._copying: set[asyncio.Task[None]] = set()
        # The bookkeeping after the upstream's 250 and the Sent copies are group-committed:
        # under load one transaction serves every message relayed meanwhile.
        self._records: GroupCommit[tuple[int, str], bool] = GroupCommit(
            lambda relayed: self._store.record_outbound_relayed(relayed=relayed, owner=self.owner),
            executor,
        )
        # Batches of copies are analysed by the store's worker processes (8 or more), then
        # committed in one transaction. Not in the writer thread: the analysis would hold up
        # the intake's commits; the store's writer lock orders the transactions themselves.
        self._copies: GroupCommit[int, None] = GroupCommit(self._file_sent_copies, executor)

    def _file_sent_copies(self, outbound_ids: Sequence[int]) -> list[None]:
        self._store.file_sent_copies(outbound_ids=outbound_ids, now=self._clock())
        return [None] * len(outbound_ids)

    def wake(self) -> None:
        """New mail is queued: look now rather than at the next poll."""
        self._wake.set()

    def accepted(self, queue_id: int) -> None:
        """A message was acknowledged to its client: its file is in place, its hold over."""
        self._ready.add(queue_id)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="smtp-relay")

    async def stop(self) -> None:
        await self._records.drain()
        await self._copies.drain()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in [*self._in_flight, *self._copying]:
            task.cancel()
        await asyncio.gather(*self._in_flight, *self._copying, return_exceptions=True)
        await self._connections.close()

    async def run_once(self, limit: int = 1000) -> int:
        """Claim every due message (up to `limit`) and process them, copies filed; for tests
        and tools."""
        claims = await self._claim(limit)
        await asyncio.gather(*(self.process(claim) for claim in claims))
        await asyncio.gather(*self._copying)
        return len(claims)

    async def prune_finished(self) -> int:
        """Delete messages finished longer ago than the retention period, and their blobs
        where nothing else needs them (`GATEWAY_OUTBOUND_RETENTION_SECONDS`)."""
        finished_before = self._clock() - self._retention
        pruned = 0
        while True:
            count: int = await self._write(
                lambda: self._store.prune_outbound_messages(
                    finished_before=finished_before, limit=PRUNE_BATCH
                )
            )
            pruned += count
            if count < PRUNE_BATCH:
                break
        if pruned:
            log.info(
                "event=queue_pruned messages=%d before=%s", pruned, finished_before.isoformat()
            )
        return pruned

    async def _prune_when_due(self) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
        try:
            await self.prune_finished()
        except Exception:
            log.exception("event=queue_prune_failed")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self._prune_when_due()
            free = self._concurrency - len(self._in_flight)
            claimed = 0
            # Claim in batches (half the slots) while busy: each claim is a commit.
            if free > 0 and (free >= self._concurrency // 2 or not self._in_flight):
                try:
                    claims = await self._claim(free)
                except Exception:
                    log.exception("event=queue_claim_failed")
                    claims = []
                claimed = len(claims)
                for claim in claims:
                    if claim.id in self._relaying:
                        # Our own claim ran out while we are still at it (a very slow
                        # upstream): the attempt in progress decides; no second copy.
                        continue
                    task = asyncio.create_task(self.process(claim))
                    self._in_flight.add(task)
                    self._relaying[claim.id] = task
                    task.add_done_callback(partial(self._finished, claim.id))
            if claimed and claimed == free:
                # More may be due: come back as soon as a slot frees up.
                await self._wake.wait()
                continue
            # asyncio.timeout, not wait_for: in 3.11 wait_for can lose a cancellation that
            # arrives as the event is set, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()

    def _finished(self, queue_id: int, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._relaying.pop(queue_id, None)
        self._wake.set()

    async def _call(self, function: Callable[[], Any]) -> Any:
        """A read (or a network step) in the I/O threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def _write(self, function: Callable[[], Any]) -> Any:
        """A queue write, in the one writer thread (see `SmtpService`)."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, function)

    async def _claim(self, limit: int) -> list[OutboundInfo]:
        now = self._clock()
        ready = sorted(self._ready)[:MAX_READY_PER_CLAIM]
        # In an I/O thread, not the queue's writer thread: that one is kept for the intake's
        # commits, which clients wait for (the store's writer lock orders the two).
        claims: list[OutboundInfo] = await self._call(
            lambda: self._store.claim_outbound_messages(
                owner=self.owner, now=now, limit=limit, lease=self._lease, ready=ready
            )
        )
        claimed = {claim.id for claim in claims}
        # Ids left out only for want of a slot stay; any other is not claimable (dropped,
        # or taken by another replica after a restart) and is forgotten.
        self._ready.difference_update(ready if len(claims) < limit else claimed)
        return claims

    async def process(self, claim: OutboundInfo) -> None:
        """One claimed message, whatever state it is in; never raises."""
        try:
            if claim.state == RELAYED:
                await self._file_copies(claim)
            else:
                await self._relay_claimed(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and the message is tried again; nothing is lost.
            log.exception("event=relay_failed_internally queue_id=%d", claim.id)

    async def _relay_claimed(self, claim: OutboundInfo) -> None:
        if claim.identity_id is None:
            await self._bounce(
                claim,
                dict.fromkeys(claim.recipients, "5.1.8 sender identity was removed"),
                remote="-",
                expired=False,
            )
            return
        identity_id = claim.identity_id
        target: RelayTarget = await self._call(
            lambda: self._store.read_relay_target(identity_id=identity_id)
        )
        try:
            content: bytes = await self._call(
                lambda: self._store.read_outbound_content(blob_hash=claim.blob_hash)
            )
        except FileNotFoundError:
            await self._file_missing(claim)
            return
        try:
            outcome = await self._relay(
                target,
                sender=claim.sender,
                recipients=claim.recipients,
                content=strip_bcc(content),
                local_hostname=self._hostname,
                timeout=self._timeout,
                connections=self._connections,
            )
        except RelayError as error:
            await self._failed(
                claim,
                target,
                dict.fromkeys(claim.recipients, error.reason),
                permanent=error.permanent,
            )
            return
        if outcome.delivered and not outcome.temporary:
            # First thing after the 250: the duplicate-send window closes here.
            recorded = await self._records.submit((claim.id, outcome.reply))
        elif outcome.delivered:
            recorded = await self._write(
                lambda: self._store.defer_outbound_message(
                    outbound_id=claim.id,
                    owner=self.owner,
                    error="; ".join(outcome.temporary.values()),
                    next_attempt_at=self._next_attempt(claim),
                    recipients=list(outcome.temporary),
                )
            )
        if outcome.delivered:
            log.info(
                "event=relayed queue_id=%d relay=%s:%d recipients=%d upstream_reply=%r recorded=%s",
                claim.id,
                target.host,
                target.port,
                len(outcome.delivered),
                outcome.reply,
                recorded,
            )
        if outcome.permanent:
            await self._bounce(
                claim,
                outcome.permanent,
                remote=target.host,
                expired=False,
                final=not outcome.delivered and not outcome.temporary,
            )
        if outcome.temporary and not outcome.delivered:
            await self._failed(claim, target, outcome.temporary, permanent=False)
            return
        if outcome.delivered and not outcome.temporary:
            # The copies need no relay slot: the next message may leave meanwhile. Should
            # we stop before they are filed, the message stays "relayed" and a later claim
            # files them.
            task = asyncio.create_task(self._file_copies_safely(claim, target))
            self._copying.add(task)
            task.add_done_callback(self._copying.discard)

    async def _file_missing(self, claim: OutboundInfo) -> None:
        """The message's file is not in place: its session is still syncing it (the row was
        committed alongside, `submission.py`), or it never will be (a crash before the 250,
        or the sync failed and the client was told to try again). Wait; after long enough
        the message was certainly never acknowledged: drop it."""
        now = self._clock()
        if now - claim.created_at < UNACKNOWLEDGED_AFTER:
            await self._write(
                lambda: self._store.defer_outbound_message(
                    outbound_id=claim.id,
                    owner=self.owner,
                    error="message file not in place yet",
                    next_attempt_at=now + MISSING_FILE_RETRY,
                )
            )
            return
        await self._write(
            lambda: self._store.finish_outbound_message(
                outbound_id=claim.id,
                state="dropped",
                now=now,
                error="message file missing: never acknowledged to the client",
            )
        )
        log.warning("event=dropped_unacknowledged queue_id=%d", claim.id)

    async def _file_copies_safely(self, claim: OutboundInfo, target: RelayTarget) -> None:
        try:
            await self._file_copies(claim, target)
        except Exception:
            log.exception("event=sent_copy_failed queue_id=%d", claim.id)

    async def _failed(
        self,
        claim: OutboundInfo,
        target: RelayTarget,
        failures: Mapping[str, str],
        *,
        permanent: bool,
    ) -> None:
        now = self._clock()
        expired = now >= claim.expires_at
        if permanent or expired:
            await self._bounce(
                claim, failures, remote=target.host, expired=expired and not permanent
            )
            return
        next_attempt = self._next_attempt(claim)
        reason = "; ".join(sorted(set(failures.values())))
        await self._write(
            lambda: self._store.defer_outbound_message(
                outbound_id=claim.id,
                owner=self.owner,
                error=reason,
                next_attempt_at=next_attempt,
                recipients=list(failures),
            )
        )
        log.info(
            "event=deferred queue_id=%d attempts=%d next_attempt_at=%s reason=%r",
            claim.id,
            claim.attempts,
            next_attempt.isoformat(),
            reason,
        )

    def _next_attempt(self, claim: OutboundInfo) -> datetime:
        delay = retry_delay(claim.attempts, base=self._retry_base, ceiling=self._retry_ceiling)
        return min(self._clock() + timedelta(seconds=delay), claim.expires_at)

    async def _bounce(
        self,
        claim: OutboundInfo,
        failures: Mapping[str, str],
        *,
        remote: str,
        expired: bool,
        final: bool = True,
    ) -> None:
        now = self._clock()
        original: bytes = await self._call(
            lambda: self._store.read_outbound_content(blob_hash=claim.blob_hash)
        )
        report = build_bounce(
            reporting_host=self._hostname,
            sender=claim.sender,
            failures=failures,
            original=original,
            arrival=claim.created_at,
            now=now,
            remote_host=remote,
            expired=expired,
        )
        await self._write(
            lambda: self._store.deliver_bounce(user_id=claim.user_id, content=report, now=now)
        )
        if final:
            await self._write(
                lambda: self._store.finish_outbound_message(
                    outbound_id=claim.id,
                    state="bounced",
                    now=now,
                    error="; ".join(sorted(set(failures.values()))),
                )
            )
        log.warning(
            "event=bounced queue_id=%d recipients=%d expired=%s reason=%r",
            claim.id,
            len(failures),
            expired,
            "; ".join(sorted(set(failures.values()))),
        )

    async def _file_copies(self, claim: OutboundInfo, target: RelayTarget | None = None) -> None:
        """The copy in the source's own Sent folder (when the identity asks), then the one
        in the unified Sent, which also marks the message sent."""
        if target is None and claim.identity_id is not None:
            identity_id = claim.identity_id
            try:
                target = await self._call(
                    lambda: self._store.read_relay_target(identity_id=identity_id)
                )
            except NotFoundError:
                target = None
        source = target.sent_copy_source if target is not None else None
        if source is not None:
            try:
                secret: str = await self._call(
                    lambda: self._store.read_source_secret(source_id=source.id)
                )
                content: bytes = await self._call(
                    lambda: self._store.read_outbound_content(blob_hash=claim.blob_hash)
                )
                sent_at = self._clock()
                folder = await self._call(
                    lambda: append_to_source_sent(source, secret, content, sent_at=sent_at)
                )
                log.info(
                    "event=source_sent_copy queue_id=%d source_id=%d folder=%s",
                    claim.id,
                    source.id,
                    folder,
                )
            except Exception as error:
                # The unified Sent copy still follows; the source's copy is a courtesy.
                log.warning(
                    "event=source_sent_copy_failed queue_id=%d source_id=%d error=%s",
                    claim.id,
                    source.id,
                    type(error).__name__,
                )
        await self._copies.submit(claim.id)
        log.info("event=sent_copy_filed queue_id=%d user_id=%d", claim.id, claim.user_id)
