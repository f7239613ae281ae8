"""The aiosmtpd handler of the submission server: AUTH, the open-relay checks, queueing.

Never an open relay (DESIGN invariant 7): nothing but AUTH is possible before a user has
authenticated (aiosmtpd's `auth_required`), AUTH only over TLS, the envelope sender and
every From: address must be the user's own identities, and recipients must be plain
`user@domain` (no %, ! or source-route hops). Anything else is refused with a 5xx and
nothing is queued.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import MISSING, AuthResult, Envelope, Session

from gateway.smtp import replies
from gateway.smtp.auth_guard import SubmissionAuthGuard
from gateway.smtp.batching import GroupCommit
from gateway.smtp.headers import prepare_submission
from gateway.store import MailStore, MessageTooLargeError
from gateway.store.views import IdentityInfo, OutboundSubmission, StoredBlob, UserInfo

log = logging.getLogger("gateway.smtp")

MAX_RECIPIENTS = 100
HASH_ON_LOOP_BYTES = 256 * 1024
PARALLEL_PASSWORD_CHECKS = 2
# A domain of dot-separated labels (U-labels allowed with SMTPUTF8); no address literals.
_DOMAIN = re.compile(r"^(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)*[^\W_](?:[\w-]{0,61}[^\W_])?$")


@dataclass(frozen=True)
class SubmitterLogin:
    """What a successful AUTH leaves on the session: the user and their identities."""

    user_id: int
    name: str
    identities: dict[str, IdentityInfo]


def plain_recipient(address: str) -> bool:
    """Whether `address` is a plain user@domain: one @, no % or ! hops (RFC 5321 App. C)."""
    local, at, domain = address.rpartition("@")
    if not at or not local or "@" in local or any(c in local for c in '%!"\\'):
        return False
    if any(c.isspace() or ord(c) < 32 for c in address):
        return False
    return bool(_DOMAIN.match(domain))


class SubmissionHandler:
    def __init__(
        self,
        store: MailStore,
        intake: GroupCommit[OutboundSubmission, int],
        guard: SubmissionAuthGuard,
        executor: Executor,
        *,
        clock: Callable[[], datetime],
        accepted: Callable[[int], None],
    ) -> None:
        self._store = store
        self._intake = intake
        self._accepted = accepted
        self._guard = guard
        self._executor = executor
        self._clock = clock
        # Each password check (argon2) takes 64 MiB for ~50 ms: a burst of logins waits its
        # turn rather than multiplying that. Repeated logins hit the store's verified cache.
        self._password_checks = asyncio.Semaphore(PARALLEL_PASSWORD_CHECKS)

    async def _call(self, function: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    # --- AUTH (RFC 4954), instead of aiosmtpd's built-ins: the password check runs off the
    # --- event loop, and failures are throttled.

    async def auth_PLAIN(self, server: Any, args: list[str]) -> AuthResult:  # noqa: N802
        if len(args) == 1:
            response = await server.challenge_auth("", encode_to_b64=False)
            if response is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            response = _decode(args[1])
            if response is None:
                await server.push(replies.AUTH_MALFORMED)
                return AuthResult(success=False, handled=True)
        # RFC 4616 §2: [authzid] NUL authcid NUL passwd
        parts = response.split(b"\x00")
        if len(parts) != 3:
            await server.push(replies.AUTH_MALFORMED)
            return AuthResult(success=False, handled=True)
        authzid, login, password = parts
        if authzid and authzid != login:
            # Acting as another user is not offered (RFC 4954 §4: 535 5.7.8 will do).
            return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)
        return await self._check(server, login, password)

    async def auth_LOGIN(self, server: Any, args: list[str]) -> AuthResult:  # noqa: N802
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            login = _decode(args[1])
            if login is None:
                await server.push(replies.AUTH_MALFORMED)
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._check(server, login, password)

    async def _check(self, server: Any, login: bytes, password: bytes) -> AuthResult:
        name = login.decode("utf-8", "replace")
        secret = password.decode("utf-8", "replace")

        async def verify() -> UserInfo | None:
            async with self._password_checks:
                user: UserInfo | None = await self._call(
                    lambda: self._store.authenticate_user(name=name, password=secret)
                )
                return user

        outcome = await self._guard.log_in(peer=_peer(server), name=name, check=verify)
        if outcome.wait:
            return AuthResult(
                success=False,
                handled=False,
                message=replies.AUTH_THROTTLED.format(seconds=math.ceil(outcome.wait)),
            )
        user = outcome.user
        if user is None:
            return AuthResult(success=False, handled=False, message=replies.AUTH_INVALID)
        identities = await self._call(lambda: self._store.list_identities(user_id=user.id))
        log.info("event=auth_ok service=submission user=%s peer=%s", user.name, _peer(server))
        return AuthResult(
            success=True,
            auth_data=SubmitterLogin(
                user.id, user.name, {identity.address: identity for identity in identities}
            ),
            message=replies.AUTH_SUCCESS,
        )

    # --- the transaction ---------------------------------------------------------------

    async def handle_EHLO(  # noqa: N802
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # RFC 2920 (PIPELINING): aiosmtpd reads commands from a buffered stream, one at a
        # time, so pipelined commands are answered in order. RFC 2034: every reply of ours
        # carries an enhanced code (protocol.py adds them to aiosmtpd's).
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(  # noqa: N802
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        login = _login(session)
        if address.lower() not in login.identities:
            log.warning(
                "event=sender_refused user=%s sender=%s peer=%s", login.name, address, _peer(server)
            )
            return replies.SENDER_NOT_OWNED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return replies.SENDER_OK

    async def handle_RCPT(  # noqa: N802
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not plain_recipient(address):
            log.warning(
                "event=recipient_refused user=%s peer=%s reason=routing",
                _login(session).name,
                _peer(server),
            )
            return (
                replies.ROUTING_REFUSED
                if any(c in address for c in "%!@")
                else replies.BAD_RECIPIENT
            )
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return replies.TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return replies.RECIPIENT_OK

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        login = _login(session)
        sender = str(envelope.mail_from)
        identity = login.identities.get(sender.lower())
        if identity is None:  # pragma: no cover - MAIL already refused it
            return replies.SENDER_NOT_OWNED
        content = envelope.original_content or b""
        prepared = prepare_submission(
            content, now=self._clock(), domain=identity.address.rsplit("@", 1)[1]
        )
        if not prepared.from_addresses:
            return replies.FROM_MISSING
        foreign = [a for a in prepared.from_addresses if a.lower() not in login.identities]
        if foreign:
            log.warning(
                "event=from_refused user=%s from=%s peer=%s", login.name, foreign[0], _peer(server)
            )
            return replies.FROM_NOT_OWNED
        try:
            content = prepared.content
            if len(content) > self._store.max_message_size:
                return replies.TOO_LARGE
            # The row needs the file's name, its hash: computed here for a typical message
            # (~0.1 ms per 64 KB; a thread hop costs more under load), in a thread past that.
            if len(content) <= HASH_ON_LOOP_BYTES:
                named = self._store.name_outbound_blob(content=content)
            else:
                named = await self._call(lambda: self._store.name_outbound_blob(content=content))
            item = OutboundSubmission(
                user_id=login.user_id,
                identity_id=identity.id,
                sender=sender,
                recipients=tuple(envelope.rcpt_tos),
                blob=named,
                message_id_header=prepared.message_id,
            )
            # The file is written and synced in this session's own thread (sessions sync in
            # parallel) while its row is group-committed with those of the other sessions,
            # held (not due) until the file is in place. The 250 waits for both (DESIGN
            # invariant 1).
            written: asyncio.Future[StoredBlob] = asyncio.get_running_loop().run_in_executor(
                self._executor, lambda: self._store.write_outbound_blob(content=content)
            )
            queued: int | BaseException
            stored: StoredBlob | BaseException
            queued, stored = await asyncio.gather(
                self._intake.submit(item), written, return_exceptions=True
            )
            if isinstance(stored, BaseException):
                # A row written meanwhile stays held, and the relay worker drops it once
                # it is clear that its file never came (worker.py, `_file_missing`).
                raise stored
            if isinstance(queued, BaseException):
                raise queued
            queue_id = queued
            # Held until now: the relay worker may take it (in memory, no write).
            self._accepted(queue_id)
        except MessageTooLargeError:
            return replies.TOO_LARGE
        except Exception:
            log.exception("event=queue_failed user=%s sender=%s", login.name, sender)
            return replies.QUEUE_FAILED
        log.info(
            "event=queued queue_id=%d user=%s sender=%s recipients=%d size=%d message_id=%s",
            queue_id,
            login.name,
            sender,
            len(item.recipients),
            item.blob.size,
            prepared.message_id,
        )
        return replies.QUEUED.format(queue_id=queue_id)


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def _login(session: Session) -> SubmitterLogin:
    login = session.auth_data
    # aiosmtpd's auth_required refuses MAIL/RCPT/DATA before AUTH; this is the proof.
    if not isinstance(login, SubmitterLogin):
        raise PermissionError("transaction command before authentication")
    return login


def _peer(server: Any) -> str:
    peer = server.session.peer if server.session is not None else None
    return str(peer[0]) if isinstance(peer, tuple) else "unknown"
