"""The durable outbound queue of the SMTP submission server (gateway/smtp).

A message is accepted (the client's `250`) only once its blob is fsynced
(`write_outbound_blob`, in the session's own thread, so concurrent sessions sync in parallel)
and its row committed (`queue_outbound_messages`, one transaction for every message that
arrived meanwhile).
Relay workers claim due rows with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never
take the same message at once; a claim is a lease (`next_attempt_at` pushed past the relay
timeout), so a message whose worker died is claimed again once the lease runs out.

States: queued -> relayed (the upstream said 250; the Sent copy is pending) -> sent, or
bounced (permanent failure / expiry) or dropped (by an operator).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, or_, update
from sqlmodel import Session, col, select

from gateway.ingest_worker import MessageColumns, analyze_stored
from gateway.store.base import POOL_MIN_BATCH
from gateway.store.blobs import PendingBlob
from gateway.store.errors import InvalidOperationError, NotFoundError
from gateway.store.ingest import IngestOperations, NewMessage, _Prepared
from gateway.store.models import Mailbox, MailboxEntry, Message, OutboundMessage
from gateway.store.views import AppendResult, OutboundInfo, OutboundSubmission, StoredBlob

QUEUED, RELAYED, SENT, BOUNCED, DROPPED = "queued", "relayed", "sent", "bounced", "dropped"
PENDING_STATES = (QUEUED, RELAYED)
FINISHED_STATES = (SENT, BOUNCED, DROPPED)
STATES = (QUEUED, RELAYED, SENT, BOUNCED, DROPPED)


class OutboundOperations(IngestOperations):
    def write_outbound_blob(self, *, content: bytes) -> StoredBlob:
        """Make a submitted message's bytes durable (fsync, rename, directory fsync); its
        queue row follows with `queue_outbound_messages`. Blocking: call it from a thread.
        Until the row commits, the garbage collector's grace period keeps the file."""
        if len(content) > self.max_message_size:
            raise self._too_large()
        blob = self.blobs.begin()
        try:
            blob.write(content)
            self.blobs.commit([blob])
        except BaseException:
            blob.discard()
            raise
        return StoredBlob(blob.close(), blob.size)

    @staticmethod
    def name_outbound_blob(*, content: bytes) -> StoredBlob:
        """The name and size `write_outbound_blob` will store `content` under (the blob
        store's content address), so that its row can be written while the file is."""
        return StoredBlob(hashlib.sha256(content).hexdigest(), len(content))

    def queue_outbound_messages(
        self,
        *,
        items: Sequence[OutboundSubmission],
        now: datetime,
        lifetime: timedelta,
        hold: timedelta = timedelta(0),
    ) -> list[int]:
        """Queue messages in one transaction; their queue ids.

        Once this returned and each blob is durable, the client may have its 250 (DESIGN
        invariant 1). A message whose blob is still being synced is queued with a `hold`:
        not due until the hold's end unless claimed by id as `ready` (its session tells
        the relay worker after the 250). A row whose file is missing after a while was
        never acknowledged (a crash before the 250): the relay worker drops it.
        """
        if not items:
            return []
        rows = [
            {
                "user_id": item.user_id,
                "identity_id": item.identity_id,
                "sender": item.sender,
                "recipients_json": json.dumps(list(item.recipients)),
                "blob_hash": item.blob.blob_hash,
                "size": item.blob.size,
                "message_id_header": item.message_id_header,
                "state": QUEUED,
                "attempts": 0,
                "next_attempt_at": now + hold,
                "expires_at": now + lifetime,
                "created_at": now,
            }
            for item in items
        ]
        # Core, not ORM objects: every client waiting for its 250 waits for this
        # transaction, which holds the store's writer lock.
        table = OutboundMessage.__table__  # type: ignore[attr-defined]
        with self.database.write() as session:
            return [
                int(queue_id)
                for queue_id in session.scalars(
                    insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
                )
            ]

    def claim_outbound_messages(
        self,
        *,
        owner: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        ready: Sequence[int] = (),
    ) -> list[OutboundInfo]:
        """Take up to `limit` due messages for `owner` until `now + lease` (SKIP LOCKED: other
        replicas' claims are passed over, never waited for); `ready` messages (just
        acknowledged, their hold not over) count as due.

        Not waited on the disk for: a claim lost to a power cut only means the message is
        claimed again, and the queue's one writer thread need not sit through an fsync."""
        with self.database.write(durable=False) as session:
            rows = session.exec(
                select(OutboundMessage)
                .where(
                    col(OutboundMessage.state).in_(PENDING_STATES),
                    or_(
                        col(OutboundMessage.next_attempt_at) <= now,
                        col(OutboundMessage.id).in_(list(ready)),
                    ),
                )
                .order_by(col(OutboundMessage.next_attempt_at), col(OutboundMessage.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.lease_owner = owner
                row.next_attempt_at = now + lease
                if row.state == QUEUED:
                    row.attempts += 1
                session.add(row)
            session.flush()
            return [outbound_view(row) for row in rows]

    def read_outbound_content(self, *, blob_hash: str) -> bytes:
        """A queued message's bytes as submitted (Bcc still in: the relay strips it)."""
        return self.blobs.read(blob_hash)

    def record_outbound_relayed(
        self, *, relayed: Sequence[tuple[int, str]], owner: str
    ) -> list[bool]:
        """The upstream accepted these messages ((queue id, its reply) each): never relay
        them again. One transaction for all; per message False if `owner` no longer holds
        the claim (another replica took it over after the lease ran out). The claim's lease
        stays: the holder files the Sent copies now, anyone may once it has run out.

        Committed without waiting for the disk: it survives a crash of this process (the
        duplicate-send window, smtp/worker.py); the next durable commit (a queued message's,
        milliseconds later under load) or SQLite's next checkpoint makes it durable against
        a power cut too, as a WAL is flushed in order. A power cut before that can repeat
        the relay, as a crash inside the window does.

        Two statements for the whole batch (the claims still held, locked; one UPDATE run
        for each of them): the store's writer lock, which a client's 250 may wait for, is
        held that much shorter than with an UPDATE and its round trips per message."""
        ids = [outbound_id for outbound_id, _ in relayed]
        with self.database.write(durable=False) as session:
            held = set(
                session.exec(
                    select(OutboundMessage.id)
                    .where(
                        col(OutboundMessage.id).in_(ids),
                        col(OutboundMessage.lease_owner) == owner,
                        col(OutboundMessage.state) == QUEUED,
                    )
                    .with_for_update()
                )
            )
            rows = [
                {"row_id": outbound_id, "reply": reply[:1000]}
                for outbound_id, reply in relayed
                if outbound_id in held
            ]
            if rows:
                table = OutboundMessage.__table__  # type: ignore[attr-defined]
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("row_id"))
                    .values(state=RELAYED, upstream_reply=bindparam("reply"), last_error=None),
                    rows,
                )
            return [outbound_id in held for outbound_id in ids]

    def defer_outbound_message(
        self,
        *,
        outbound_id: int,
        owner: str,
        error: str,
        next_attempt_at: datetime,
        recipients: Sequence[str] | None = None,
    ) -> bool:
        """A temporary failure: try again at `next_attempt_at`, only to `recipients` if given
        (the others were delivered or bounced)."""
        values: dict[str, object] = {"next_attempt_at": next_attempt_at, "last_error": error[:1000]}
        if recipients is not None:
            values["recipients_json"] = json.dumps(list(recipients))
        with self.database.write() as session:
            return self._update_claimed(session, outbound_id, owner, **values)

    def finish_outbound_message(
        self, *, outbound_id: int, state: str, now: datetime, error: str | None = None
    ) -> None:
        """The message's fate is settled: sent, bounced or dropped."""
        if state not in (SENT, BOUNCED, DROPPED):
            raise InvalidOperationError(f"not a final state: {state}")
        values: dict[str, object] = {"state": state, "finished_at": now, "lease_owner": None}
        if error is not None:
            values["last_error"] = error[:1000]
        with self.database.write() as session:
            session.execute(
                update(OutboundMessage)
                .where(col(OutboundMessage.id) == outbound_id)
                .values(**values)
            )

    def file_sent_copies(self, *, outbound_ids: Sequence[int], now: datetime) -> int:
        """Append each relayed message to its user's Sent mailbox (\\Seen) and mark it sent,
        in one transaction; returns how many copies were appended.

        The copy is the queued blob itself (content-addressed: the same bytes, already
        durable), so nothing is written or synced but the rows. Idempotent: a copy already
        there (the same content in that Sent mailbox) is not appended twice.
        """
        with self.database.read() as session:
            rows = session.exec(
                select(OutboundMessage).where(col(OutboundMessage.id).in_(list(outbound_ids)))
            ).all()
            if len(rows) != len(set(outbound_ids)):
                raise NotFoundError(f"no such outbound message among {list(outbound_ids)}")
            sent = {user: self._sent_mailbox(session, user) for user in {r.user_id for r in rows}}
            filed = set(
                session.exec(
                    select(MailboxEntry.mailbox_id, Message.blob_hash)
                    .join(Message, col(Message.id) == col(MailboxEntry.message_id))
                    .where(
                        col(MailboxEntry.mailbox_id).in_(list(sent.values())),
                        col(Message.blob_hash).in_({row.blob_hash for row in rows}),
                    )
                ).all()
            )
        copies = {
            (sent[row.user_id], row.blob_hash): row
            for row in rows
            if (sent[row.user_id], row.blob_hash) not in filed
        }
        columns = self._analyze_stored([row.blob_hash for row in copies.values()])
        prepared = [
            _Prepared(
                NewMessage(mailbox_id, b"", ("\\Seen",), internal_date=now),
                PendingBlob.written(self.blobs.path_for(digest), row.size, digest),
                analysed,
            )
            for ((mailbox_id, digest), row), analysed in zip(copies.items(), columns, strict=True)
        ]
        changed: dict[int, tuple[int, int]] = {}
        # Not waited on the disk for: the copy's content is durable already (the queued
        # blob), and if a power cut loses these rows, it loses the `sent` state with them,
        # so the message is still "relayed" and its copy is filed again.
        with self.database.write(durable=False) as session:
            if prepared:
                _, changed = self._insert_all(session, prepared, "smtp")
            session.execute(
                update(OutboundMessage)
                .where(col(OutboundMessage.id).in_(list(outbound_ids)))
                .values(state=SENT, finished_at=now, lease_owner=None)
            )
        self._notify(changed, "smtp")
        return len(prepared)

    def _analyze_stored(self, digests: Sequence[str]) -> list[MessageColumns]:
        """The message columns of stored blobs, in the worker processes for a batch.

        The body text for SEARCH is left to the search indexer, as fetchers leave it: the
        transaction that files the copies then writes small rows, and holds the store's
        writer lock (which a client's 250 may be waiting for) that much shorter."""
        jobs = [(self.blobs.path_for(digest), False) for digest in digests]
        pool = self._analysis_pool() if len(jobs) >= POOL_MIN_BATCH else None
        if pool is not None:
            try:
                return list(pool.map(analyze_stored, jobs))
            except BrokenProcessPool:
                self._drop_broken_pool()
        return [analyze_stored(job) for job in jobs]

    def deliver_bounce(self, *, user_id: int, content: bytes, now: datetime) -> AppendResult:
        """Put a delivery status notification into the user's INBOX."""
        with self.database.read() as session:
            inbox = session.exec(
                select(Mailbox.id).where(Mailbox.user_id == user_id, Mailbox.name == "INBOX")
            ).first()
        if inbox is None:
            raise NotFoundError(f"user {user_id} has no INBOX")
        return self.append_message(
            mailbox_id=inbox, content=content, internal_date=now, actor="smtp"
        )

    def list_outbound_messages(
        self, *, user_id: int | None = None, states: Sequence[str] = PENDING_STATES
    ) -> list[OutboundInfo]:
        with self.database.read() as session:
            query = (
                select(OutboundMessage)
                .where(col(OutboundMessage.state).in_(list(states)))
                .order_by(col(OutboundMessage.id))
            )
            if user_id is not None:
                query = query.where(OutboundMessage.user_id == user_id)
            return [outbound_view(row) for row in session.exec(query)]

    def get_outbound_message(self, *, outbound_id: int) -> OutboundInfo:
        with self.database.read() as session:
            row = session.get(OutboundMessage, outbound_id)
            if row is None:
                raise NotFoundError(f"no such outbound message: {outbound_id}")
            return outbound_view(row)

    def retry_outbound_message(
        self, *, outbound_id: int, now: datetime, lifetime: timedelta
    ) -> OutboundInfo:
        """Make a queued message due now; a bounced one is queued again for a new lifetime."""
        with self.database.write() as session:
            row = session.get(OutboundMessage, outbound_id)
            if row is None:
                raise NotFoundError(f"no such outbound message: {outbound_id}")
            if row.state not in (QUEUED, BOUNCED):
                raise InvalidOperationError(
                    f"message {outbound_id} is {row.state}: nothing to retry"
                )
            if row.state == BOUNCED:
                row.state, row.expires_at, row.finished_at = QUEUED, now + lifetime, None
            row.next_attempt_at = now
            row.lease_owner = None
            session.add(row)
            session.flush()
            return outbound_view(row)

    def drop_outbound_message(self, *, outbound_id: int, now: datetime) -> OutboundInfo:
        """Give up on a queued message without a bounce (an operator's decision)."""
        with self.database.write() as session:
            row = session.get(OutboundMessage, outbound_id)
            if row is None:
                raise NotFoundError(f"no such outbound message: {outbound_id}")
            if row.state != QUEUED:
                raise InvalidOperationError(f"message {outbound_id} is {row.state}: not queued")
            row.state, row.finished_at, row.lease_owner = DROPPED, now, None
            session.add(row)
            session.flush()
            return outbound_view(row)

    def outbound_blob_hashes(self) -> set[str]:
        """Blobs the queue still needs (the garbage collector keeps them)."""
        with self.database.read() as session:
            return set(
                session.exec(
                    select(OutboundMessage.blob_hash).where(
                        col(OutboundMessage.state).in_(PENDING_STATES)
                    )
                )
            )

    def prune_outbound_messages(
        self, *, finished_before: datetime, limit: int = 1000, blob_grace_seconds: float = 3600.0
    ) -> int:
        """Delete up to `limit` messages that were sent, bounced or dropped before
        `finished_before`, and their blobs where no other row refers to them (a Sent copy
        keeps its blob); returns how many messages were deleted."""
        with self.database.write() as session:
            doomed = session.exec(
                select(OutboundMessage.id, OutboundMessage.blob_hash)
                .where(
                    col(OutboundMessage.state).in_(FINISHED_STATES),
                    col(OutboundMessage.finished_at) < finished_before,
                )
                .order_by(col(OutboundMessage.id))
                .limit(limit)
            ).all()
            if not doomed:
                return 0
            session.execute(
                delete(OutboundMessage).where(
                    col(OutboundMessage.id).in_([outbound_id for outbound_id, _ in doomed])
                )
            )
            hashes = {blob_hash for _, blob_hash in doomed}
            kept = set(
                session.exec(
                    select(OutboundMessage.blob_hash).where(
                        col(OutboundMessage.blob_hash).in_(hashes)
                    )
                )
            ) | set(
                session.exec(select(Message.blob_hash).where(col(Message.blob_hash).in_(hashes)))
            )
        # After the commit: a crash in between leaves files for `collect_garbage`, never a
        # row without its file.
        self.blobs.remove(hashes - kept, grace_seconds=blob_grace_seconds)
        return len(doomed)

    @staticmethod
    def _update_claimed(session: Session, outbound_id: int, owner: str, **values: object) -> bool:
        result = session.execute(
            update(OutboundMessage)
            .where(
                col(OutboundMessage.id) == outbound_id,
                col(OutboundMessage.lease_owner) == owner,
                col(OutboundMessage.state) == QUEUED,
            )
            .values(**values)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def _sent_mailbox(session: Session, user_id: int) -> int:
        mailbox_id = session.exec(
            select(Mailbox.id)
            .where(Mailbox.user_id == user_id, Mailbox.special_use == "\\Sent")
            .order_by(col(Mailbox.id))
        ).first()
        if mailbox_id is None:
            mailbox_id = session.exec(
                select(Mailbox.id).where(Mailbox.user_id == user_id, Mailbox.name == "Sent")
            ).first()
        if mailbox_id is None:
            raise NotFoundError(f"user {user_id} has no Sent mailbox")
        return mailbox_id


def outbound_view(row: OutboundMessage) -> OutboundInfo:
    assert row.id is not None  # noqa: S101
    return OutboundInfo(
        id=row.id,
        user_id=row.user_id,
        identity_id=row.identity_id,
        sender=row.sender,
        recipients=tuple(json.loads(row.recipients_json)),
        blob_hash=row.blob_hash,
        size=row.size,
        message_id_header=row.message_id_header,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        expires_at=row.expires_at,
        created_at=row.created_at,
        finished_at=row.finished_at,
        last_error=row.last_error,
        upstream_reply=row.upstream_reply,
    )
