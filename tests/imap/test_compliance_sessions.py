"""Regressions imaptest (Dovecot's compliance tool) found in sessions on a real server.

Each test names the defect class it guards, so CI keeps it fixed without imaptest. Runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

from tests.support.corpus import crlf
from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import RawImapClient

MESSAGE = crlf("From: a@example.org\nSubject: s\n\nbody\n")


def session(gateway: RunningGateway) -> RawImapClient:
    client = RawImapClient(gateway.host, gateway.port, timeout=10)
    client.login(USER, PASSWORD)
    return client


def append(client: RawImapClient, mailbox: bytes, flags: bytes = b"()") -> bytes:
    literal = b"{%d+}\r\n" % len(MESSAGE)
    return client.command(b"APPEND " + mailbox + b" " + flags + b" " + literal + MESSAGE).tagged


def test_recreated_mailbox_is_not_its_deleted_namesake(
    gateway_any_backend: RunningGateway,
) -> None:
    """SQLite reuses a deleted mailbox's id: SELECT must not serve the old one's cached view,
    and messages appended to the new one are \\Recent to the first session (RFC 3501 §2.3.2)."""
    with session(gateway_any_backend) as client:
        client.command(b"CREATE box")
        for _ in range(3):
            append(client, b"box")
        client.command(b"SELECT box")
        client.command(b"UNSELECT")
        client.command(b"DELETE box")
        client.command(b"CREATE box")
        append(client, b"box")
        selected = b"".join(client.command(b"SELECT box").untagged)
        assert b"* 1 EXISTS\r\n" in selected
        assert b"* 1 RECENT\r\n" in selected
        assert client.command(b"SEARCH RECENT").untagged == [b"* SEARCH 1\r\n"]
        with session(gateway_any_backend) as other:
            # \Recent belongs to one session only.
            assert b"* 0 RECENT\r\n" in other.command(b"SELECT box").untagged
