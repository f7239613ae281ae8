"""Shared helpers for the fetch tests: sources, what the store holds, wire normalisation."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gateway.store import MailStore, SourceInfo

_BARE_LF = re.compile(rb"(?<!\r)\n")


def add_pop3_source(
    store: MailStore,
    *,
    port: int,
    username: str,
    password: str,
    name: str = "isp",
    security: str = "none",
    options: dict[str, Any] | None = None,
    user_name: str = "alice",
    protocol: str = "pop3",
) -> SourceInfo:
    try:
        user = store.get_user(name=user_name)
    except Exception:
        user = store.create_user(name=user_name, password="pw")
    merged: dict[str, Any] = {"allow_plaintext": True, "timeout_seconds": 10}
    merged.update(options or {})
    return store.add_source(
        user_id=user.id,
        name=name,
        protocol=protocol,
        host="127.0.0.1",
        port=port,
        security=security,
        username=username,
        secret=password,
        options=merged,
    )


def add_imap_source(
    store: MailStore, *, port: int, username: str, password: str, **kwargs: Any
) -> SourceInfo:
    return add_pop3_source(
        store, port=port, username=username, password=password, protocol="imap", **kwargs
    )


def inbox_contents(
    store: MailStore, user_name: str = "alice"
) -> list[tuple[bytes, frozenset[str]]]:
    """Every INBOX message as the store serves it, with its keywords, in UID order."""
    user = store.get_user(name=user_name)
    inbox = store.get_mailbox(user_id=user.id, name="INBOX")
    found = []
    for entry in store.list_entries(mailbox_id=inbox.id):
        with store.open_message(message_id=entry.message_id) as handle:
            found.append((handle.read(), entry.keywords))
    return found


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def digests(contents: list[bytes]) -> list[str]:
    return sorted(digest(content) for content in contents)


def varied_message(number: int) -> bytes:
    """A small message of 0-39 body lines (by `number`), with a unique Message-ID."""
    filler = "".join(f"line {number} {k} of the body\r\n" for k in range(number % 40))
    return f"Subject: kill test {number}\r\nMessage-ID: <k{number}@t>\r\n\r\n{filler}".encode()


def pop3_wire_form(raw: bytes) -> bytes:
    """What a POP3 server (Dovecot) sends for a stored message: bare LF as CRLF, and a final
    line ending added when missing (RFC 1939 §3 responses are made of CRLF lines)."""
    data = _BARE_LF.sub(b"\r\n", raw)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data
