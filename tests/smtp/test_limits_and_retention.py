"""Connections per address on the submission listeners, and the relay worker pruning
finished messages after the retention period; real sockets, a real upstream."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.smtp.clients import message_bytes, read_mailbox, submit
from tests.support.smtp_peers import ADDRESS, FakeClock, SmtpGateway, UpstreamSmtp

LIMIT = 2


def _greeting(sock: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(1024)
        if not chunk:
            break
        reply += chunk
    return reply


def _refused(sock: socket.socket) -> None:
    """421 4.7.0 and the server closes the connection."""
    assert _greeting(sock).startswith(b"421 4.7.0 ")
    assert sock.recv(1024) == b""


@pytest.fixture
def limited_gateway(tmp_path: Path, upstream: UpstreamSmtp) -> Iterator[SmtpGateway]:
    with SmtpGateway(
        tmp_path / "data", allow_plaintext=False, smtp_connections_per_address=LIMIT
    ) as running:
        user_id = running.add_user()
        running.store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        yield running


def test_connections_past_the_per_address_limit_get_421(limited_gateway: SmtpGateway) -> None:
    gateway = limited_gateway
    address = ("127.0.0.1", gateway.submission_port)
    first, second = socket.create_connection(address, 10), socket.create_connection(address, 10)
    try:
        assert _greeting(first).startswith(b"220") and _greeting(second).startswith(b"220")
        with socket.create_connection(address, 10) as third:
            _refused(third)
        # The SMTPS listener counts against the same limit (after its TLS handshake).
        context = gateway.client_tls_context()
        raw = socket.create_connection(("127.0.0.1", gateway.smtps_port), 10)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            _refused(tls)
    finally:
        first.close()
    # A closed connection frees its place.
    with socket.create_connection(address, 10) as again:
        assert _greeting(again).startswith(b"220")
    second.close()


def test_starttls_sessions_count_once_and_work(limited_gateway: SmtpGateway) -> None:
    gateway = limited_gateway
    clients = []
    try:
        for _ in range(LIMIT):
            client = smtplib.SMTP("127.0.0.1", gateway.submission_port, timeout=30)
            client.starttls(context=gateway.client_tls_context())
            clients.append(client)
        with socket.create_connection(("127.0.0.1", gateway.submission_port), 10) as extra:
            _refused(extra)
        clients.pop().quit()
        # Exactly one place is free again: STARTTLS did not count a second connection.
        submit(gateway, message_bytes(subject="after the limit"))
        gateway.wait_for(lambda: len(gateway.store.list_outbound_messages(states=("sent",))) == 1)
    finally:
        for client in clients:
            client.quit()


def test_the_relay_worker_prunes_finished_messages_after_retention(
    tmp_path: Path, upstream: UpstreamSmtp
) -> None:
    clock = FakeClock(datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
    with SmtpGateway(
        tmp_path / "data",
        allow_plaintext=False,
        clock=clock,
        outbound_retention_seconds=3600,
    ) as gateway:
        user_id = gateway.add_user()
        gateway.store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        submit(gateway, message_bytes(subject="to be pruned"))
        gateway.wait_for(lambda: len(gateway.store.list_outbound_messages(states=("sent",))) == 1)
        (sent,) = gateway.store.list_outbound_messages(states=("sent",))
        assert gateway.smtp.worker is not None
        worker = gateway.smtp.worker

        def prune() -> int:
            return asyncio.run_coroutine_threadsafe(worker.prune_finished(), gateway.loop).result(
                30
            )

        clock.now += timedelta(minutes=59)
        assert prune() == 0  # within the retention period
        clock.now += timedelta(minutes=2)
        assert prune() == 1
        assert gateway.store.list_outbound_messages(states=("sent",)) == []
        # The Sent copy, which shares the blob, is still whole.
        ((flags, copy),) = read_mailbox(gateway, "Sent")
        assert b"\\Seen" in flags and copy["Subject"] == "to be pruned"
        assert copy.get_payload() == "Hi Bob,\r\n\r\nsee you.\r\n"
        assert gateway.store.blobs.path_for(sent.blob_hash).exists()
        assert len(upstream.messages()) == 1
