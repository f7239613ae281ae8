"""The SMTP side of `gateway serve`: submission listeners, intake and relay worker."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from gateway.auth_throttle import AuthThrottle, policy_from_settings
from gateway.connection_limits import ConnectionLimits
from gateway.settings import Settings
from gateway.smtp.auth_guard import SubmissionAuthGuard
from gateway.smtp.batching import GroupCommit
from gateway.smtp.protocol import SubmissionProtocol
from gateway.smtp.relay import relay_message
from gateway.smtp.submission import SubmissionHandler
from gateway.smtp.worker import Relay, RelayWorker
from gateway.store import MailStore
from gateway.store.views import OutboundSubmission

log = logging.getLogger("gateway.smtp")

# A session with no command for this long is closed (RFC 5321 §4.5.3.2.7 suggests 5 min).
SESSION_TIMEOUT_SECONDS = 300
# Longest a freshly queued message waits for its file before the relay worker looks anyway
# (only after a crash: otherwise its session releases it within milliseconds).
MAX_HOLD_SECONDS = 30.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class SmtpService:
    """Start with `await start(...)`; `ports` then holds what each listener is bound to."""

    def __init__(
        self,
        store: MailStore,
        settings: Settings,
        tls_context: ssl.SSLContext | None,
        *,
        clock: Callable[[], datetime] = utc_now,
        relay: Relay = relay_message,
    ) -> None:
        self.store = store
        self.settings = settings
        self.tls_context = tls_context
        self.ports: dict[str, int] = {}
        self._clock = clock
        self._relay = relay
        self._servers: list[asyncio.Server] = []
        self._executor = ThreadPoolExecutor(
            max_workers=settings.io_threads, thread_name_prefix="smtp-io"
        )
        # The queue's own writes (intake, claims, deferrals) follow each other in one thread.
        # The relay's records and the Sent copies, which need no fsync, take the store's
        # writer lock from the I/O threads instead, so they never queue ahead of an intake
        # commit in here.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-queue")
        # Both listeners count against one limit per address, as IMAP's two do.
        self._limits = ConnectionLimits()
        self.worker: RelayWorker | None = None
        self._intake: GroupCommit[OutboundSubmission, int] | None = None
        self._handler: SubmissionHandler | None = None
        self.hostname = settings.smtp_hostname or ""

    async def start(
        self, *, submission_port: int | None, smtps_port: int | None, relay: bool = True
    ) -> None:
        """Listen on each port that is not None (0 picks a free port); `relay=False` leaves
        the queue to other processes (or to tests that drive `worker.run_once`)."""
        if not self.hostname:
            # getfqdn may ask DNS: not on the event loop.
            self.hostname = await asyncio.to_thread(socket.getfqdn)
        settings = self.settings
        self.worker = RelayWorker(
            self.store,
            self._executor,
            self._writer,
            hostname=self.hostname,
            concurrency=settings.smtp_relay_concurrency,
            timeout=settings.smtp_relay_timeout_seconds,
            lease=timedelta(seconds=settings.smtp_relay_lease_seconds),
            retry_base=settings.smtp_retry_base_seconds,
            retry_ceiling=settings.smtp_retry_max_seconds,
            poll_seconds=settings.smtp_queue_poll_seconds,
            clock=self._clock,
            retention=timedelta(seconds=settings.outbound_retention_seconds),
            relay=self._relay,
        )
        lifetime = timedelta(seconds=settings.smtp_queue_lifetime_seconds)
        # Accepted messages are made durable together: one blob sync, one commit per batch.
        # A message's row is written while its file is synced, held until the file is in
        # place; after a crash, held rows become due when the hold ends.
        hold = timedelta(seconds=min(settings.smtp_relay_lease_seconds, MAX_HOLD_SECONDS))
        self._intake = GroupCommit(
            lambda items: self.store.queue_outbound_messages(
                items=items, now=self._clock(), lifetime=lifetime, hold=hold
            ),
            self._writer,
        )

        self._handler = SubmissionHandler(
            self.store,
            self._intake,
            SubmissionAuthGuard(AuthThrottle(self.store, policy_from_settings(settings))),
            self._executor,
            clock=self._clock,
            accepted=self.worker.accepted,
        )
        if submission_port is not None:
            await self._listen("submission", submission_port, implicit_tls=False)
        if smtps_port is not None:
            if self.tls_context is None:
                raise ValueError("implicit-TLS submission needs a TLS context")
            await self._listen("smtps", smtps_port, implicit_tls=True)
        if relay:
            self.worker.start()

    def _protocol(self, *, implicit_tls: bool) -> SubmissionProtocol:
        allow_plaintext = self.settings.allow_plaintext
        with warnings.catch_warnings():
            # aiosmtpd warns about auth_require_tls=False, which on the smtps port only
            # means "TLS is already on" (see below).
            warnings.simplefilter("ignore", UserWarning)
            return self._new_protocol(implicit_tls=implicit_tls, allow_plaintext=allow_plaintext)

    def _new_protocol(self, *, implicit_tls: bool, allow_plaintext: bool) -> SubmissionProtocol:
        return SubmissionProtocol(
            self._handler,
            limits=self._limits,
            connections_per_address=self.settings.smtp_connections_per_address,
            hostname=self.hostname,
            ident="mail-gateway",
            data_size_limit=self.settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            # STARTTLS on the submission port only; the smtps port is TLS from the start.
            tls_context=None if implicit_tls else self.tls_context,
            require_starttls=not implicit_tls and not allow_plaintext,
            timeout=SESSION_TIMEOUT_SECONDS,
            auth_required=True,
            # On the smtps port the transport itself is TLS (aiosmtpd only knows about TLS
            # it started): AUTH needs no STARTTLS there. GATEWAY_ALLOW_PLAINTEXT: tests only.
            auth_require_tls=not (implicit_tls or allow_plaintext),
            loop=asyncio.get_running_loop(),
        )

    async def _listen(self, name: str, port: int, *, implicit_tls: bool) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: self._protocol(implicit_tls=implicit_tls),
            host=self.settings.bind,
            port=port,
            ssl=self.tls_context if implicit_tls else None,
            backlog=1024,
            reuse_address=True,
            ssl_handshake_timeout=30 if implicit_tls else None,
        )
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        self.ports[name] = int(bound[1])
        log.info("event=listening service=%s address=%s port=%s", name, bound[0], bound[1])

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        if self._intake is not None:
            await self._intake.drain()
        if self.worker is not None:
            await self.worker.stop()
        self._executor.shutdown(wait=True)
        self._writer.shutdown(wait=True)
