"""The IMAP listeners: implicit TLS (993-style) and STARTTLS (143-style), on one event loop."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor

from gateway.auth_throttle import AuthThrottle, policy_from_settings
from gateway.imap.change_hub import ChangeHub
from gateway.imap.connection import ImapConnection
from gateway.imap.context import ServerContext
from gateway.imap.protocol import responses
from gateway.imap.search_limits import SearchSlots
from gateway.settings import Settings
from gateway.store import MailStore

log = logging.getLogger("gateway.imap")


class ImapServer:
    """Start with `await start(...)`; `ports` then holds what each listener is bound to."""

    def __init__(
        self,
        store: MailStore,
        settings: Settings,
        tls_context: ssl.SSLContext | None,
        *,
        command_observer: Callable[[str, float], None] | None = None,
    ) -> None:
        self.store = store
        self._command_observer = command_observer
        self.settings = settings
        self.tls_context = tls_context
        self.ports: dict[str, int] = {}
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._context: ServerContext | None = None
        self._handshakes: asyncio.Semaphore | None = None
        self._feed_stop = threading.Event()
        # Set once the PostgreSQL change feed listens (tests wait for it instead of sleeping).
        self.change_feed_listening = threading.Event()
        self._feed_thread: threading.Thread | None = None

    async def start(self, *, starttls_port: int | None, tls_port: int | None) -> None:
        """Listen on each port that is not None (0 picks a free port)."""
        loop = asyncio.get_running_loop()
        hub = ChangeHub(loop)
        self._handshakes = asyncio.Semaphore(self.settings.imap_tls_handshakes)
        self._context = ServerContext(
            store=self.store,
            settings=self.settings,
            executor=ThreadPoolExecutor(
                max_workers=self.settings.io_threads, thread_name_prefix="imap-io"
            ),
            hub=hub,
            tls_context=self.tls_context,
            command_observer=self._command_observer,
            throttle=AuthThrottle(self.store, policy_from_settings(self.settings)),
            search_slots=SearchSlots(
                per_user=self.settings.imap_searches_per_user,
                io_threads=self.settings.io_threads,
            ),
        )
        self.store.add_change_listener(hub.store_changed)
        context = self._context

        async def read_modseqs(mailbox_ids: Collection[int]) -> dict[int, int]:
            return await context.call(self.store.highest_modseqs, mailbox_ids=mailbox_ids)

        hub.start_polling(read_modseqs, self.settings.imap_change_poll_seconds)
        if self.store.supports_change_feed:
            self._feed_thread = threading.Thread(
                target=self.store.listen_for_changes,
                kwargs={
                    "on_change": hub.mailbox_changed,
                    "stop": self._feed_stop,
                    "listening": self.change_feed_listening,
                },
                name="imap-change-feed",
                daemon=True,
            )
            self._feed_thread.start()
        if starttls_port is not None:
            await self._listen("imap", starttls_port, implicit_tls=False)
        if tls_port is not None:
            if self.tls_context is None:
                raise ValueError("implicit-TLS IMAP needs a TLS context")
            await self._listen("imaps", tls_port, implicit_tls=True)

    async def _listen(self, name: str, port: int, *, implicit_tls: bool) -> None:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(reader, writer, implicit_tls=implicit_tls)

        # Implicit TLS is started in _serve, after the connection is counted against its
        # address: asyncio's own handshake would run before any limit applies (3,000 silent
        # connections held 1 GB for the 30 s handshake timeout).
        server = await asyncio.start_server(
            accept, host=self.settings.bind, port=port, backlog=1024, reuse_address=True
        )
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        self.ports[name] = int(bound[1])
        log.info("event=listening service=%s address=%s port=%s", name, bound[0], bound[1])

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, implicit_tls: bool
    ) -> None:
        context = self._context
        assert context is not None  # noqa: S101
        task = asyncio.current_task()
        assert task is not None  # noqa: S101
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if peername else "unknown"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not context.limits.open_connection(peer, self.settings.imap_connections_per_address):
            writer.write(responses.untagged("BYE Too many connections from your address"))
            writer.close()
            return
        self._connections.add(task)
        try:
            if implicit_tls and not await self._handshake(writer, peer):
                return
            await ImapConnection(
                context, reader, writer, implicit_tls=implicit_tls, peer=peer
            ).run()
        except asyncio.CancelledError:
            # stop() cancels open connections; the task ends here, quietly.
            return
        finally:
            context.limits.close_connection(peer)
            self._connections.discard(task)

    def session_count(self) -> int:
        """Logged-in IMAP sessions right now (a metric)."""
        if self._context is None:
            return 0
        return sum(self._context.limits.per_user.values())

    async def _handshake(self, writer: asyncio.StreamWriter, peer: str) -> bool:
        """Implicit TLS within bounds: so many handshakes at once, each so long."""
        assert self.tls_context is not None and self._handshakes is not None  # noqa: S101
        timeout = self.settings.imap_tls_handshake_seconds
        try:
            async with asyncio.timeout(timeout):
                # Waiting for a slot counts against the same time as the handshake.
                async with self._handshakes:
                    await writer.start_tls(self.tls_context, ssl_handshake_timeout=timeout)
        except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as error:
            log.info("event=imaps_handshake_failed peer=%s error=%s", peer, type(error).__name__)
            writer.transport.abort()
            return False
        return True

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._feed_stop.set()
        if self._feed_thread is not None:
            await asyncio.to_thread(self._feed_thread.join, 5)
            self._feed_thread = None
        if self._context is not None:
            await self._context.hub.stop_polling()
            self.store.remove_change_listener(self._context.hub.store_changed)
            self._context.executor.shutdown(wait=False, cancel_futures=True)
            self._context = None
