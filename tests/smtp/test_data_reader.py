"""DATA read in bulk (gateway/smtp/protocol.py): the same bytes and replies as aiosmtpd's
line-by-line reader, over a real socket."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.smtp.protocol import longest_line, unstuff
from tests.smtp.clients import message_bytes
from tests.support.gateway_server import PASSWORD, USER
from tests.support.smtp_peers import ADDRESS, SmtpGateway, UpstreamSmtp

SIZE_LIMIT = 200_000


@pytest.fixture
def plain_gateway(tmp_path: Path, upstream: UpstreamSmtp) -> Iterator[SmtpGateway]:
    """Plaintext AUTH on loopback (GATEWAY_ALLOW_PLAINTEXT), the relay worker off."""
    with SmtpGateway(tmp_path / "data", relay=False, max_message_size=SIZE_LIMIT) as running:
        user_id = running.add_user()
        running.store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        yield running


class Wire:
    """A raw SMTP client: what we write is exactly what goes on the wire."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.socket.makefile("rb")
        assert self.reply().startswith(b"220")

    def reply(self) -> bytes:
        lines = []
        while True:
            line = self.file.readline()
            assert line, "connection closed"
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.reply()

    def start_data(self) -> None:
        assert self.command(b"EHLO client.test").startswith(b"250")
        token = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        assert self.command(b"AUTH PLAIN " + token).startswith(b"235")
        assert self.command(f"MAIL FROM:<{ADDRESS}>".encode()).startswith(b"250")
        assert self.command(b"RCPT TO:<bob@example.net>").startswith(b"250")
        assert self.command(b"DATA").startswith(b"354")

    def close(self) -> None:
        self.file.close()
        self.socket.close()


def _queued(gateway: SmtpGateway) -> list[bytes]:
    return [
        gateway.store.read_outbound_content(blob_hash=item.blob_hash)
        for item in gateway.store.list_outbound_messages()
    ]


def test_unstuff_and_longest_line() -> None:
    assert unstuff(b"..a\r\nb\r\n...\r\n.\r\nc.\r\n") == b".a\r\nb\r\n..\r\n\r\nc.\r\n"
    assert unstuff(b"plain\r\n") == b"plain\r\n"
    assert longest_line(b"ab\r\nabcd\r\n") == 6


def test_dot_stuffed_lines_and_pipelined_quit(plain_gateway: SmtpGateway) -> None:
    body = "..leading dot\r\nends with a dot.\r\n...\r\nlast.\r\n"
    content = message_bytes(body=body)
    wire = Wire(plain_gateway.submission_port)
    try:
        wire.start_data()
        # The final dot and the next command in one segment (RFC 2920 pipelining after DATA,
        # as Postfix's client does with QUIT): the command must still be read and answered.
        wire.send(content + b".\r\nQUIT\r\n")
        assert wire.reply().startswith(b"250 2.0.0 Queued as")
        assert wire.reply().startswith(b"221")
    finally:
        wire.close()
    (stored,) = _queued(plain_gateway)
    assert stored.endswith(b".leading dot\r\nends with a dot.\r\n..\r\nlast.\r\n")


def test_data_split_across_segments_at_every_byte_of_the_end(plain_gateway: SmtpGateway) -> None:
    content = message_bytes(body="x.\r\n")
    wire = Wire(plain_gateway.submission_port)
    try:
        wire.start_data()
        # The end-of-data sequence arrives one byte at a time.
        wire.send(content[:-1])
        for byte in b"\n.\r\n":
            wire.send(bytes([byte]))
        assert wire.reply().startswith(b"250 2.0.0 Queued as")
    finally:
        wire.close()
    (stored,) = _queued(plain_gateway)
    # Date and Message-ID were added in front (RFC 6409 §8); the rest is as sent.
    assert stored.endswith(content)


def test_too_much_data_gets_552_and_the_session_goes_on(plain_gateway: SmtpGateway) -> None:
    line = b"y" * 98 + b"\r\n"
    wire = Wire(plain_gateway.submission_port)
    try:
        wire.start_data()
        wire.send(message_bytes() + line * (SIZE_LIMIT // len(line) + 10) + b".\r\n")
        assert wire.reply().startswith(b"552 5.3.4")
        # The session is back in its initial state: a next transaction works.
        assert wire.command(f"MAIL FROM:<{ADDRESS}>".encode()).startswith(b"250")
    finally:
        wire.close()
    assert _queued(plain_gateway) == []


def test_long_line_gets_500(plain_gateway: SmtpGateway) -> None:
    wire = Wire(plain_gateway.submission_port)
    try:
        wire.start_data()
        wire.send(message_bytes(body="z" * 1000 + "\r\n") + b".\r\n")
        assert wire.reply().startswith(b"500 5.5.1 Line too long")
        assert wire.command(b"NOOP").startswith(b"250")
    finally:
        wire.close()
    assert _queued(plain_gateway) == []
