"""A real IMAP server of ours on 127.0.0.1 and free ports, in its own event-loop thread.

Synchronous clients (imaplib, imapclient, mbsync, offlineimap) talk to it from the test.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from pathlib import Path
from types import TracebackType

from gateway.imap.server import ImapServer
from gateway.settings import Settings
from gateway.store import MailStore, open_store
from gateway.tls import ensure_certificate, server_context
from tests.support.fixtures_store import make_settings

USER = "alice"
PASSWORD = "alice-secret-pw"


class RunningGateway:
    def __init__(self, data_dir: Path, database_url: str | None = None, **settings: object) -> None:
        settings.setdefault("allow_plaintext", True)
        settings.setdefault("ingest_workers", 0)
        self.settings: Settings = make_settings(data_dir, database_url, **settings)
        self.store: MailStore = open_store(self.settings)
        self.cert, key = ensure_certificate(self.settings)
        self.server = ImapServer(self.store, self.settings, server_context(self.cert, key))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.host = "127.0.0.1"

    def start(self) -> RunningGateway:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(
            self.server.start(starttls_port=0, tls_port=0), self.loop
        ).result(30)
        return self

    @property
    def port(self) -> int:
        return self.server.ports["imap"]

    @property
    def tls_port(self) -> int:
        return self.server.ports["imaps"]

    def add_user(self, name: str = USER, password: str = PASSWORD) -> int:
        return self.store.create_user(name=name, password=password).id

    def client_tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.cert))
        context.check_hostname = False
        return context

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            self.loop.close()
            self.store.close()

    def __enter__(self) -> RunningGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
