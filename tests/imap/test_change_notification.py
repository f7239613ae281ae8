"""IDLE wake-ups: commits in this process at once, commits by another process by polling."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from gateway.store import open_store
from tests.support.corpus import crlf
from tests.support.fixtures_store import PostgresDatabase
from tests.support.gateway_server import PASSWORD, USER, RunningGateway

MESSAGE = crlf("From: a@example.org\nSubject: ping\n\nhello\n")


def idle_socket(gateway: RunningGateway) -> socket.socket:
    sock = socket.create_connection((gateway.host, gateway.port), timeout=10)
    stream = sock.makefile("rb")
    stream.readline()
    sock.sendall(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    while not stream.readline().startswith(b"+"):
        pass
    sock.settimeout(10)
    return sock


def read_until(sock: socket.socket, needle: bytes) -> bytes:
    received = b""
    while needle not in received:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    return received


def test_idle_hears_a_commit_in_this_process_within_100_ms(gateway: RunningGateway) -> None:
    sock = idle_socket(gateway)
    inbox = gateway.store.get_mailbox(user_id=1, name="INBOX")
    latencies = []
    for number in range(1, 6):
        gateway.store.append_message(mailbox_id=inbox.id, content=MESSAGE)
        committed = time.perf_counter()
        read_until(sock, f"* {number} EXISTS".encode())
        latencies.append(time.perf_counter() - committed)
    sock.sendall(b"DONE\r\n")
    assert b"c OK" in read_until(sock, b"c OK")
    sock.close()
    assert sorted(latencies)[2] < 0.1, latencies


def test_idle_hears_a_commit_by_another_process(gateway: RunningGateway) -> None:
    sock = idle_socket(gateway)
    # A second store on the same database stands in for `gateway sync` in another process:
    # its commits do not go through this server's change listener.
    other = open_store(gateway.settings)
    try:
        inbox = other.get_mailbox(user_id=1, name="INBOX")
        other.append_message(mailbox_id=inbox.id, content=MESSAGE)
        started = time.perf_counter()
        read_until(sock, b"* 1 EXISTS")
        assert time.perf_counter() - started < 3 * gateway.settings.imap_change_poll_seconds
    finally:
        other.close()
        sock.close()


@pytest.mark.postgres
def test_idle_hears_another_process_at_once_through_listen_notify(tmp_path: Path) -> None:
    # Polling is slowed to a minute: only the PostgreSQL change feed can deliver in time.
    with (
        PostgresDatabase() as url,
        RunningGateway(tmp_path / "data", url, imap_change_poll_seconds=60) as gateway,
    ):
        gateway.add_user()
        sock = idle_socket(gateway)
        other = open_store(gateway.settings)
        try:
            inbox = other.get_mailbox(user_id=1, name="INBOX")
            assert gateway.server.change_feed_listening.wait(10), "LISTEN never started"
            latencies = []
            for number in range(1, 4):
                other.append_message(mailbox_id=inbox.id, content=MESSAGE)
                committed = time.perf_counter()
                read_until(sock, f"* {number} EXISTS".encode())
                latencies.append(time.perf_counter() - committed)
            assert sorted(latencies)[1] < 0.1, latencies
        finally:
            other.close()
            sock.close()
