"""Relay one queued message through its identity's provider, with aiosmtplib.

Failures are sorted into temporary (4xx, network, TLS, timeouts: retried later) and
permanent (5xx: bounced), per RFC 5321 §4.2.1; a partial acceptance is reported per
recipient so only the ones still owed are retried.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiosmtplib

from gateway.smtp.relay_pool import RelayConnections, quit_session, session_key
from gateway.store.views import RelayTarget


class RelayError(Exception):
    """The whole attempt failed; `permanent` says whether to bounce rather than retry."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class RelayOutcome:
    delivered: tuple[str, ...]
    # The upstream's reply to the end of DATA (its queue id, usually).
    reply: str
    temporary: dict[str, str] = field(default_factory=dict)
    permanent: dict[str, str] = field(default_factory=dict)


def relay_tls_context(options: dict[str, object]) -> ssl.SSLContext:
    """Verified against the system CAs, or the identity's `tls_ca_file`."""
    ca_file = options.get("tls_ca_file")
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(ca_file) if ca_file else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _timeout(options: dict[str, object], default: float) -> float:
    value = options.get("timeout_seconds", default)
    return float(value) if isinstance(value, int | float) and value > 0 else default


def _mail_options(sender: str, recipients: Sequence[str], content: bytes) -> list[str]:
    options = []
    if not content.isascii():
        options.append("BODY=8BITMIME")
    if not (sender.isascii() and all(r.isascii() for r in recipients)):
        options.append("SMTPUTF8")  # RFC 6531 §3.4
    return options


_quitting: dict[aiosmtplib.SMTP, asyncio.Task[None]] = {}


def _quit_later(client: aiosmtplib.SMTP) -> None:
    task = asyncio.create_task(quit_session(client))
    _quitting[client] = task  # a reference, so the task is not collected mid-way
    task.add_done_callback(lambda _: _quitting.pop(client, None))


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


async def relay_message(
    target: RelayTarget,
    *,
    sender: str,
    recipients: Sequence[str],
    content: bytes,
    local_hostname: str,
    timeout: float,
    connections: RelayConnections | None = None,
) -> RelayOutcome:
    """One SMTP transaction at the identity's relay, in a session from `connections` when
    one is open, else in a new one (left there afterwards); raises RelayError."""
    options = target.options
    if target.security == "none" and not options.get("allow_plaintext"):
        raise RelayError(
            "plaintext relay refused: set the identity's relay option allow_plaintext",
            permanent=True,
        )
    key = session_key(target, local_hostname)
    reused = await connections.take(key) if connections is not None else None
    client = reused or aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        local_hostname=local_hostname,
        timeout=_timeout(options, timeout),
        use_tls=target.security == "tls",
        start_tls=target.security == "starttls",
        tls_context=relay_tls_context(options) if target.security != "none" else None,
    )
    handed_off = False
    try:
        if reused is None:
            await client.connect()
            if target.username:
                await client.login(target.username, target.secret)
        refused, reply = await client.sendmail(
            sender,
            list(recipients),
            content,
            mail_options=_mail_options(sender, recipients, content),
        )
        # The message has left: the caller records that before anything else happens (the
        # duplicate-send window, worker.py), so QUIT goes on in the background.
        if connections is not None:
            connections.give_back(key, client)
        else:
            _quit_later(client)
        handed_off = True
    except aiosmtplib.SMTPRecipientsRefused as error:
        temporary = {
            r.recipient: _reply(r.code, r.message) for r in error.recipients if r.code < 500
        }
        permanent = {
            r.recipient: _reply(r.code, r.message) for r in error.recipients if r.code >= 500
        }
        return RelayOutcome(delivered=(), reply="", temporary=temporary, permanent=permanent)
    except aiosmtplib.SMTPResponseException as error:
        raise RelayError(_reply(error.code, error.message), permanent=error.code >= 500) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        # Connection refused or lost, TLS failures (ssl.SSLError is an OSError), timeouts.
        raise RelayError(f"{type(error).__name__}: {error}", permanent=False) from None
    finally:
        if not handed_off:
            if connections is not None:
                connections.forget(client)
            if client.is_connected:
                await quit_session(client)
    temporary = {r: _reply(*answer) for r, answer in refused.items() if answer[0] < 500}
    permanent = {r: _reply(*answer) for r, answer in refused.items() if answer[0] >= 500}
    delivered = tuple(r for r in recipients if r not in refused)
    # aiosmtplib hands back the text of the 250 to the end of DATA.
    return RelayOutcome(delivered, _reply(250, reply), temporary, permanent)
