"""Abuse: garbage, oversized input, floods and slow clients get clear answers and limits."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

from tests.support.gateway_server import PASSWORD, USER, RunningGateway


class LineClient:
    def __init__(self, gateway: RunningGateway) -> None:
        self.sock = socket.create_connection((gateway.host, gateway.port), timeout=10)
        self.buffer = b""
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buffer[:200]!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def until_tagged(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def close(self) -> None:
        self.sock.close()


def test_random_garbage_never_kills_the_session_or_server(gateway: RunningGateway) -> None:
    rng = random.Random(7)
    for round_number in range(30):
        client = LineClient(gateway)
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        client.send(garbage.replace(b"{", b"(") + b"\r\n")
        client.send(f"z{round_number} NOOP\r\n".encode())
        lines = client.until_tagged(f"z{round_number}".encode())
        assert lines[-1].startswith(f"z{round_number} OK".encode()), lines
        client.close()


def test_overlong_line_and_huge_literal_get_errors_and_the_session_goes_on(
    gateway: RunningGateway,
) -> None:
    client = LineClient(gateway)
    client.send(b"a1 LOGIN " + b"x" * 200_000 + b"\r\n")
    assert b"BAD" in client.line()
    client.send(b"a2 LOGIN {999999999999}\r\n")
    assert client.line().startswith(b"a2 ")
    client.send(f"a3 LOGIN {USER} {PASSWORD}\r\n".encode())
    assert client.until_tagged(b"a3")[-1].startswith(b"a3 OK")
    client.send(b"a4 APPEND INBOX {999999999}\r\n")
    assert b"TOOBIG" in client.line()
    client.send(b"a5 NOOP\r\n")
    assert client.until_tagged(b"a5")[-1].startswith(b"a5 OK")
    client.close()


def test_a_flood_of_invalid_commands_is_cut_off(gateway: RunningGateway) -> None:
    client = LineClient(gateway)
    client.send(b"".join(b"x%d FROB\r\n" % n for n in range(40)))
    lines = []
    try:
        while True:
            lines.append(client.line())
    except ConnectionError:
        pass
    assert lines[-1].startswith(b"* BYE"), lines[-3:]
    assert sum(line.endswith(b"unknown command") for line in lines) <= 20


def test_failed_logins_are_slowed_down(gateway: RunningGateway) -> None:
    client = LineClient(gateway)
    timings = []
    for attempt in range(8):
        started = time.perf_counter()
        client.send(f"f{attempt} LOGIN {USER} wrong{attempt}\r\n".encode())
        line = client.until_tagged(f"f{attempt}".encode())[-1]
        timings.append(time.perf_counter() - started)
        assert b"AUTHENTICATIONFAILED" in line
    # Five free failures, a sixth checked at once, then 1 s and 2 s of delay.
    assert timings[6] >= 0.9 and timings[7] >= 1.9, timings
    client.send(f"ok LOGIN {USER} {PASSWORD}\r\n".encode())
    assert client.until_tagged(b"ok")[-1].startswith(b"ok OK")
    client.close()


def test_connection_limit_and_login_timeout(tmp_path: Path) -> None:
    with RunningGateway(
        tmp_path / "data", imap_connections_per_address=3, imap_login_timeout_seconds=1
    ) as gateway:
        open_clients = [LineClient(gateway) for _ in range(3)]
        refused = LineClient(gateway)
        assert refused.greeting.startswith(b"* BYE")
        refused.close()
        started = time.perf_counter()
        assert open_clients[0].line().startswith(b"* BYE Autologout")
        assert time.perf_counter() - started < 3
        for client in open_clients:
            client.close()
