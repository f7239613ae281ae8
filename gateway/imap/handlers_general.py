"""Commands valid in any state, login, and the connection-level extensions."""

from __future__ import annotations

import asyncio
import base64
import binascii
import math

from gateway import __version__
from gateway.imap.capabilities import capabilities
from gateway.imap.errors import CommandFailedError, bad, no
from gateway.imap.protocol import commands as c
from gateway.imap.protocol import responses
from gateway.imap.protocol.codes import ResponseCode
from gateway.imap.session_base import SessionBase, State, log
from gateway.store.views import UserInfo

# How long a login waits for the throttle before it is refused with UNAVAILABLE.
LOGIN_WAIT_PATIENCE_SECONDS = 20.0


class GeneralHandlers(SessionBase):
    def capability_names(self) -> list[str]:
        settings = self.context.settings
        return capabilities(
            authenticated=self.user is not None,
            tls_active=self.channel.tls_active,
            starttls_offered=self.context.tls_context is not None,
            plaintext_allowed=settings.allow_plaintext,
            append_limit=settings.max_message_size,
            compression_active=self.channel.compression_active,
        )

    def capability_code(self) -> str:
        return "CAPABILITY " + " ".join(self.capability_names())

    async def do_capability(self, command: c.Capability) -> str:
        self.untagged("CAPABILITY " + " ".join(self.capability_names()))
        return "Capability completed"

    async def do_noop(self, command: c.Noop | c.Check) -> str:
        await self.send_updates(allow_expunge=True, force=True)
        return "NOOP completed"

    async def do_logout(self, command: c.Logout) -> str:
        self.untagged("BYE Logging out")
        self.state = State.LOGOUT
        return "Logout completed"

    async def do_id(self, command: c.Id) -> str:
        self.write(
            responses.untagged(
                b"ID ("
                + responses.quoted("name")
                + b" "
                + responses.quoted("mail-gateway")
                + b" "
                + responses.quoted("version")
                + b" "
                + responses.quoted(__version__)
                + b")"
            )
        )
        return "ID completed"

    async def do_starttls(self, command: c.StartTls) -> str | None:
        if self.channel.tls_active or self.context.tls_context is None:
            raise bad("TLS is already active" if self.channel.tls_active else "TLS unavailable")
        self.write(responses.tagged(command.tag, "OK", "Begin TLS negotiation now"))
        await self.channel.drain()
        await self.channel.start_tls()
        return None

    def require_login_allowed(self) -> None:
        if not (self.channel.tls_active or self.context.settings.allow_plaintext):
            raise CommandFailedError(
                "NO", "log in over TLS (STARTTLS) first", ResponseCode.PRIVACYREQUIRED
            )

    async def do_login(self, command: c.Login) -> str:
        self.require_login_allowed()
        await self.log_in(command.username, command.password)
        return "Logged in"

    async def do_authenticate(self, command: c.Authenticate) -> str | None:
        self.require_login_allowed()
        if command.mechanism != "PLAIN":
            raise no(f"unsupported mechanism {command.mechanism}")
        response = command.initial_response
        if response is None:
            # RFC 4959: without SASL-IR the server sends an empty challenge.
            self.write(b"+ \r\n")
            await self.channel.drain()
            line = await self.channel.read_line()
            if line is None:
                self.state = State.LOGOUT
                return None
            if line.strip() == b"*":
                raise bad("authentication cancelled")
            try:
                response = base64.b64decode(line.strip(), validate=True)
            except (binascii.Error, ValueError) as error:
                raise bad("invalid base64 in SASL response") from error
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise bad("malformed PLAIN response")
        authzid, authcid, password = (part.decode("utf-8", "replace") for part in parts)
        if authzid and authzid != authcid:
            raise no("acting as another user is not allowed", ResponseCode.AUTHORIZATIONFAILED)
        await self.log_in(authcid, password)
        return "Logged in"

    async def log_in(self, name: str, password: str) -> None:
        context = self.context
        throttle = context.throttle
        # A client that mistyped waits for its turn; one that keeps guessing is refused.
        async with throttle.attempt(
            address=self.peer, username=name, patience=LOGIN_WAIT_PATIENCE_SECONDS
        ) as wait:
            if wait:
                log.warning(
                    "event=imap_login_throttled session=%s peer=%s user=%s wait=%.0f",
                    self.session_id,
                    self.peer,
                    name[:64],
                    wait,
                )
                # RFC 5530 UNAVAILABLE: try again later; the password was not looked at.
                raise no(
                    f"too many failed logins, try again in {math.ceil(wait)} seconds",
                    ResponseCode.UNAVAILABLE,
                )
            user: UserInfo | None = await context.call(
                context.store.authenticate_user, name=name, password=password
            )
            if user is None:
                await throttle.record_failure(address=self.peer, username=name)
                log.warning(
                    "event=imap_login_failed session=%s peer=%s user=%s",
                    self.session_id,
                    self.peer,
                    name[:64],
                )
                raise no("invalid credentials", ResponseCode.AUTHENTICATIONFAILED)
            await throttle.record_success(address=self.peer, username=name)
        if not context.limits.open_session(user.id, context.settings.imap_sessions_per_user):
            raise no("too many sessions for this user", ResponseCode.LIMIT)
        self.user = user
        self.state = State.AUTHENTICATED
        log.info(
            "event=imap_login session=%s peer=%s user=%s", self.session_id, self.peer, user.name
        )

    async def do_enable(self, command: c.Enable) -> str:
        enabled = []
        for name in command.capabilities:
            if name == "CONDSTORE":
                self.enable_condstore()
                enabled.append(name)
            elif name == "QRESYNC":
                # RFC 7162 §3.2.3: enabling QRESYNC implies CONDSTORE.
                self.enable_condstore()
                self.qresync = True
                enabled.append(name)
        self.untagged("ENABLED" + "".join(f" {name}" for name in enabled))
        return "Enabled"

    async def do_compress(self, command: c.Compress) -> str | None:
        if self.channel.compression_active:
            raise no("compression is already active", ResponseCode.COMPRESSIONACTIVE)
        if command.mechanism != "DEFLATE":
            raise bad(f"unknown compression mechanism {command.mechanism}")
        self.write(responses.tagged(command.tag, "OK", "DEFLATE active"))
        await self.channel.drain()
        self.channel.start_compression()
        return None

    async def do_idle(self, command: c.Idle) -> str | None:
        """RFC 2177: stream updates until DONE; woken by commits, never by polling."""
        await self.send_updates(allow_expunge=True, force=True)
        self.write(responses.continuation("idling"))
        await self.channel.drain()
        line_task = asyncio.ensure_future(self.channel.read_line())
        try:
            while True:
                waiters: set[asyncio.Future[object]] = {line_task}  # type: ignore[arg-type]
                change_task = None
                if self.watch is not None:
                    change_task = asyncio.ensure_future(self.watch.changed.wait())
                    waiters.add(change_task)  # type: ignore[arg-type]
                done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if change_task is not None and not change_task.done():
                    change_task.cancel()
                if line_task in done:
                    break
                await self.send_updates(allow_expunge=True)
                await self.channel.drain()
        finally:
            if not line_task.done():
                line_task.cancel()
        line = line_task.result()
        if line is None:
            self.state = State.LOGOUT
            return None
        if line.strip().upper() != b"DONE":
            raise bad("expected DONE")
        return "IDLE terminated"
