"""Issue 13: while one client runs each attack, another's LOGIN + SELECT + FETCH takes < 1 s.

Each attack runs from its own threads (TLS and login floods from 127.0.0.2, another address)
for the whole measurement. The machine running the tests is shared and small (2 cores), so
the bound is checked on the median of three tries and the worst is printed with it.
"""

from __future__ import annotations

import contextlib
import imaplib
import socket
import statistics
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.store import NewMessage
from tests.support.gateway_server import PASSWORD, USER, RunningGateway

ATTACKER, ATTACKER_PASSWORD = "mallory", "mallory-secret"
STRANGER = "127.0.0.2"
BODY = b"From: a@example.org\r\nSubject: hello %d\r\n\r\n" + b"some words of text\r\n" * 200

Attack = Callable[[RunningGateway, threading.Event, threading.Event], None]


# The attack's sockets, closed when the measurement ends so its threads stop at once.
ATTACK_SOCKETS: list[socket.socket] = []


def connect(
    gateway: RunningGateway, source: str = "127.0.0.1", port: int | None = None
) -> socket.socket:
    sock = socket.create_connection(
        (gateway.host, port or gateway.port), timeout=120, source_address=(source, 0)
    )
    ATTACK_SOCKETS.append(sock)
    return sock


class Lines:
    """A minimal client for the attacker: send raw, read lines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.reader.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, tag: bytes) -> None:
        while not (line := self.reader.readline()).startswith(tag + b" "):
            if not line:
                raise ConnectionError("closed")

    def login(self) -> None:
        self.send(f"l LOGIN {ATTACKER} {ATTACKER_PASSWORD}\r\n".encode())
        self.until(b"l")


def attack_list_backtracking(
    gateway: RunningGateway, started: threading.Event, stop: threading.Event
) -> None:
    client = Lines(connect(gateway))
    client.login()
    pattern = b"%*" * 2000 + b"x"
    started.set()
    while not stop.is_set():
        client.send(b'a LIST "" "' + pattern + b'"\r\n')
        client.until(b"a")


def attack_compress_flood(
    gateway: RunningGateway, started: threading.Event, stop: threading.Event
) -> None:
    sock = connect(gateway)
    client = Lines(sock)
    client.login()
    client.send(b"c COMPRESS DEFLATE\r\n")
    client.until(b"c")
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    inflate = zlib.decompressobj(-15)
    flood = b"n NOOP\r\n" * (1 << 18)
    started.set()
    while not stop.is_set():
        sock.sendall(deflate.compress(flood + b"z NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
        tail = b""
        while b"z OK" not in tail:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return
            tail = (tail + inflate.decompress(chunk))[-64:]


def attack_search_flood(
    gateway: RunningGateway, started: threading.Event, stop: threading.Event
) -> None:
    search = b"s SEARCH" + b" NOT TEXT needle-nowhere" * 499 + b"\r\n"
    clients = []
    for _ in range(4):
        client = Lines(connect(gateway))
        client.login()
        client.send(b"x SELECT INBOX\r\n")
        client.until(b"x")
        clients.append(client)
    started.set()
    while not stop.is_set():
        for client in clients:
            client.send(search * 2)
        for client in clients:
            client.until(b"s")
            client.until(b"s")


def attack_many_mailboxes(
    gateway: RunningGateway, started: threading.Event, stop: threading.Event
) -> None:
    client = Lines(connect(gateway))
    client.login()
    for number in range(60):  # 20 levels each: up to the 1,000-mailbox limit and past it
        client.send(b'm CREATE "' + b"m%d/" % number + b"b/" * 18 + b'x"\r\n')
        client.until(b"m")
    started.set()
    while not stop.is_set():
        client.send(b'a LIST "" "*"\r\n')
        client.until(b"a")


def attack_tls_handshake_flood(
    gateway: RunningGateway, started: threading.Event, stop: threading.Event
) -> None:
    silent = []
    for _ in range(400):
        try:
            silent.append(connect(gateway, STRANGER, gateway.tls_port))
        except OSError:
            break
    started.set()
    stop.wait()
    for sock in silent:
        sock.close()


def attack_login_guessing(
    gateway: RunningGateway, started: threading.Event, stop: threading.Event
) -> None:
    def guess(number: int) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                client = Lines(connect(gateway, STRANGER))
                while not stop.is_set():
                    attempt += 1
                    client.send(f"g LOGIN {USER} guess-{number}-{attempt}\r\n".encode())
                    client.until(b"g")
            except (ConnectionError, OSError):
                continue

    threads = [threading.Thread(target=guess, args=(n,), daemon=True) for n in range(50)]
    for thread in threads:
        thread.start()
    started.set()
    stop.wait()
    for thread in threads:
        thread.join(30)


ATTACKS: dict[str, Attack] = {
    "list_backtracking": attack_list_backtracking,
    "compress_flood": attack_compress_flood,
    "search_flood": attack_search_flood,
    "many_mailboxes": attack_many_mailboxes,
    "tls_handshake_flood": attack_tls_handshake_flood,
    "login_guessing": attack_login_guessing,
}


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[RunningGateway]:
    with RunningGateway(tmp_path / "data") as gateway:
        alice = gateway.add_user()
        mallory = gateway.add_user(ATTACKER, ATTACKER_PASSWORD)
        for user_id, count in ((alice, 1), (mallory, 300)):
            inbox = gateway.store.get_mailbox(user_id=user_id, name="INBOX")
            gateway.store.append_messages(
                items=[NewMessage(inbox.id, BODY % n) for n in range(count)]
            )
        yield gateway


def victim_round_trip(gateway: RunningGateway) -> float:
    started = time.perf_counter()
    client = imaplib.IMAP4(gateway.host, gateway.port, timeout=30)
    client.login(USER, PASSWORD)
    client.select("INBOX")
    status, data = client.fetch("1", "(BODY[])")
    elapsed = time.perf_counter() - started
    assert status == "OK" and b"some words" in data[0][1]  # type: ignore[index]
    client.logout()
    return elapsed


@pytest.mark.parametrize("name", list(ATTACKS))
def test_one_client_cannot_stall_another(targets: RunningGateway, name: str) -> None:
    victim_round_trip(targets)  # alice has logged in from her address before
    started, stop = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            ATTACKS[name](targets, started, stop)
        except BaseException as error:  # reported below, not lost in the thread
            if not stop.is_set():
                failures.append(error)
            started.set()

    attacker = threading.Thread(target=run, daemon=True)
    attacker.start()
    assert started.wait(120)
    time.sleep(0.5)  # let the attack get going
    timings = [victim_round_trip(targets) for _ in range(3)]
    stop.set()
    for sock in ATTACK_SOCKETS:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    ATTACK_SOCKETS.clear()
    attacker.join(60)
    assert not failures, failures
    print(f"fairness {name}: median {statistics.median(timings):.3f} s, max {max(timings):.3f} s")
    assert statistics.median(timings) < 1.0, timings
