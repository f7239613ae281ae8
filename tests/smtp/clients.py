"""Client helpers: smtplib sessions against our gateway, imaplib reads of its mailboxes."""

from __future__ import annotations

import email
import imaplib
import smtplib
from email.message import Message

from tests.support.gateway_server import PASSWORD, USER
from tests.support.smtp_peers import ADDRESS, SmtpGateway


def message_bytes(
    *,
    sender: str = ADDRESS,
    to: str = "bob@example.net",
    subject: str = "hello",
    extra: str = "",
    body: str = "Hi Bob,\r\n\r\nsee you.\r\n",
) -> bytes:
    return (
        f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n{extra}\r\n{body}"
    ).encode()


def submit(
    gateway: SmtpGateway,
    content: bytes,
    *,
    sender: str = ADDRESS,
    recipients: tuple[str, ...] = ("bob@example.net",),
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", gateway.submission_port, timeout=30) as client:
        client.starttls(context=gateway.client_tls_context())
        client.login(USER, PASSWORD)
        return client.sendmail(sender, list(recipients), content)


def read_mailbox(gateway: SmtpGateway, mailbox: str) -> list[tuple[bytes, Message]]:
    """(FLAGS response, message) of every message in `mailbox`, via IMAPS."""
    client = imaplib.IMAP4_SSL(
        "127.0.0.1", gateway.tls_port, ssl_context=gateway.client_tls_context()
    )
    try:
        client.login(USER, PASSWORD)
        _, count = client.select(f'"{mailbox}"', readonly=True)
        if count == [b"0"]:
            return []
        _, data = client.fetch("1:*", "(FLAGS BODY.PEEK[])")
        found = []
        for item in data:
            if isinstance(item, tuple):
                found.append((item[0], email.message_from_bytes(item[1])))
        return found
    finally:
        client.logout()
