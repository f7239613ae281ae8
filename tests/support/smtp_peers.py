"""SMTP peers for tests: an upstream provider (aiosmtpd with its own certificate, requiring
STARTTLS and AUTH) and our gateway with its SMTP service, both on 127.0.0.1 and port 0.

Each runs in an event loop of its own thread, so synchronous clients (smtplib, swaks, imaplib)
talk to them from the test.
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gateway.smtp.server import SmtpService
from gateway.tls import ensure_certificate, server_context
from tests.support.fixtures_store import make_settings
from tests.support.gateway_server import RunningGateway

UPSTREAM_USER = "alice-at-provider"
UPSTREAM_PASSWORD = "provider-pw"
ADDRESS = "alice@example.org"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    content: bytes
    at: float

    @property
    def message(self) -> email.message.Message:
        return email.message_from_bytes(self.content)


@dataclass
class UpstreamSmtp:
    """A provider's submission server: STARTTLS required, then AUTH, then it takes mail.

    `reply` decides the answer to each message's end of DATA ("250 ..." by default); set it
    to a 4xx or 5xx reply to play a failing provider. `stop()` / `start()` take it down and
    bring it back on the same port.
    """

    cert_dir: Path
    received: list[Received] = field(default_factory=list)
    reply: str = "250 2.0.0 Ok: queued"
    port: int = 0
    logins: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _server: asyncio.base_events.Server | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        settings = make_settings(self.cert_dir)
        self.cert, key = ensure_certificate(settings)
        self._tls = server_context(self.cert, key)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.reply.startswith("250"):
            with self._lock:
                self.received.append(
                    Received(
                        str(envelope.mail_from),
                        list(envelope.rcpt_tos),
                        envelope.original_content or b"",
                        time.time(),
                    )
                )
        return self.reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == UPSTREAM_USER.encode()
            and data.password == UPSTREAM_PASSWORD.encode()
        )
        if ok:
            self.logins += 1
        return AuthResult(success=ok)

    def _factory(self) -> SMTP:
        return SMTP(
            self,
            hostname="provider.test",
            tls_context=self._tls,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self._authenticate,
            enable_SMTPUTF8=True,
            loop=self._loop,
        )

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def start(self) -> UpstreamSmtp:
        async def listen() -> None:
            self._server = await self._loop.create_server(
                self._factory, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

        self._run(listen())
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None

        self._run(close())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def relay_settings(self) -> dict[str, Any]:
        """`add_identity` keywords that relay through this server."""
        return {
            "relay_host": "127.0.0.1",
            "relay_port": self.port,
            "relay_security": "starttls",
            "relay_username": UPSTREAM_USER,
            "relay_secret": UPSTREAM_PASSWORD,
            "relay_options": {"tls_ca_file": str(self.cert)},
        }


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class SmtpGateway(RunningGateway):
    """Our IMAP and SMTP servers on free ports, user alice with identity alice@example.org."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        relay: bool = True,
        **settings: object,
    ) -> None:
        settings.setdefault("smtp_hostname", "gateway.test")
        super().__init__(data_dir, database_url, **settings)
        extra = {"clock": clock} if clock is not None else {}
        self.smtp = SmtpService(
            self.store,
            self.settings,
            self.server.tls_context,
            **extra,  # type: ignore[arg-type]
        )
        self._relay = relay

    def start(self) -> SmtpGateway:
        super().start()
        asyncio.run_coroutine_threadsafe(
            self.smtp.start(submission_port=0, smtps_port=0, relay=self._relay), self.loop
        ).result(30)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.smtp.stop(), self.loop).result(30)
        super().stop()

    @property
    def submission_port(self) -> int:
        return self.smtp.ports["submission"]

    @property
    def smtps_port(self) -> int:
        return self.smtp.ports["smtps"]

    def run_worker_once(self) -> int:
        assert self.smtp.worker is not None
        return asyncio.run_coroutine_threadsafe(self.smtp.worker.run_once(), self.loop).result(60)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.05)
