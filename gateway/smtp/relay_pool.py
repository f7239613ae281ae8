"""Open SMTP sessions kept between messages to the same relay, as Postfix's connection cache.

A session costs a TCP connect, the greeting, EHLO, usually STARTTLS or a TLS handshake and
AUTH, then QUIT: several round trips before and after the one transaction it carries. Under
load the relay worker sends many messages through the same provider account, so a session
that just carried one is put back here and the next message to that relay takes it, after
an RSET (RFC 5321 §4.1.1.5) shows it is still alive.

Sessions are keyed by everything that shapes them (host, port, security, login, options):
one account's session never carries another's mail. Idle sessions are closed after a short
while, and each carries a bounded number of messages, so a provider's own limits on session
length are not met.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Hashable

import aiosmtplib

from gateway.store.views import RelayTarget

# Postfix keeps a cached session for 2 s idle (smtp_connection_cache_time_limit).
IDLE_SECONDS = 2.0
# Messages per session; Postfix bounds sessions by time (300 s), providers often by count.
MESSAGES_PER_SESSION = 100
# Idle sessions kept per relay: the relay worker's concurrency bounds the busy ones.
IDLE_PER_RELAY = 20


class _Idle:
    __slots__ = ("client", "since", "used")

    def __init__(self, client: aiosmtplib.SMTP, used: int) -> None:
        self.client = client
        self.used = used
        self.since = time.monotonic()


def session_key(target: RelayTarget, local_hostname: str) -> Hashable:
    """What must match for two messages to share a session (the secret included: a changed
    password must not ride on a session opened with the old one)."""
    options = json.dumps(target.options, sort_keys=True, default=str)
    return (
        target.host,
        target.port,
        target.security,
        target.username,
        target.secret,
        options,
        local_hostname,
    )


class RelayConnections:
    """Idle sessions by relay; `take` one (alive) or None, `give_back` one after a message."""

    def __init__(self) -> None:
        self._idle: dict[Hashable, list[_Idle]] = {}
        self._used: dict[aiosmtplib.SMTP, int] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def take(self, key: Hashable) -> aiosmtplib.SMTP | None:
        """An open session to this relay that answered RSET, or None."""
        idle = self._idle.get(key)
        while idle:
            entry = idle.pop()
            if time.monotonic() - entry.since > IDLE_SECONDS or not entry.client.is_connected:
                self._close(entry.client)
                continue
            try:
                await entry.client.rset()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                # The relay closed it meanwhile (its idle timeout): open a new one.
                entry.client.close()
                continue
            self._used[entry.client] = entry.used
            return entry.client
        return None

    def give_back(self, key: Hashable, client: aiosmtplib.SMTP) -> None:
        """A session whose transaction completed: keep it for the next message, or end it."""
        used = self._used.pop(client, 0) + 1
        idle = self._idle.setdefault(key, [])
        self._drop_stale(idle)
        if used >= MESSAGES_PER_SESSION or len(idle) >= IDLE_PER_RELAY:
            self._close(client)
            return
        idle.append(_Idle(client, used))
        # Nothing else may come for this relay: close the session once it has idled out.
        asyncio.get_running_loop().call_later(IDLE_SECONDS * 1.5, self._expire, key)

    def forget(self, client: aiosmtplib.SMTP) -> None:
        """A session that failed: the caller closes it; it is not counted any more."""
        self._used.pop(client, None)

    def _expire(self, key: Hashable) -> None:
        idle = self._idle.get(key)
        if idle is not None:
            self._drop_stale(idle)
            if not idle:
                del self._idle[key]

    def _drop_stale(self, idle: list[_Idle]) -> None:
        now = time.monotonic()
        for entry in [e for e in idle if now - e.since > IDLE_SECONDS]:
            idle.remove(entry)
            self._close(entry.client)

    def _close(self, client: aiosmtplib.SMTP) -> None:
        """QUIT in the background (the caller goes on with its work)."""
        task = asyncio.get_running_loop().create_task(quit_session(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """QUIT every idle session (at shutdown)."""
        for idle in self._idle.values():
            for entry in idle:
                self._close(entry.client)
        self._idle.clear()
        await asyncio.gather(*self._closing, return_exceptions=True)


async def quit_session(client: aiosmtplib.SMTP) -> None:
    """QUIT, or just close the connection if the relay does not answer properly."""
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        with contextlib.suppress(Exception):
            client.close()
