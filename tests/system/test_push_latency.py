"""End to end: mail delivered to an IDLE-capable source reaches an IDLE client of the gateway.

The real `gateway serve` (scheduler, push watcher, IMAP server) runs as a subprocess; Dovecot is
the source; an imapclient session IDLEs on the gateway's INBOX. The issue's target is under 2 s
(Dovecot itself delays IDLE notifications by about 0.5 s).
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from imapclient import IMAPClient

from tests.support.dovecot import DovecotServer, free_port

pytestmark = [pytest.mark.system, pytest.mark.slow]
GATEWAY = str(Path(sys.executable).with_name("gateway"))
MESSAGES = 12


def _run(env: dict[str, str], *args: str, stdin: str = "") -> None:
    result = subprocess.run(
        [GATEWAY, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"gateway did not listen on {port}")


@pytest.fixture
def gateway_with_source(tmp_path: Path) -> Iterator[tuple[DovecotServer, int, Path]]:
    with DovecotServer() as dovecot:
        dovecot.add_user("push", "pw")
        dovecot.load_maildir("push", "INBOX", [b"Subject: first\r\n\r\nalready there\r\n"])
        imap_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_DATA_DIR=str(tmp_path / "data"),
            GATEWAY_SECRET_KEY=Fernet.generate_key().decode(),
            GATEWAY_ALLOW_PLAINTEXT="1",
            GATEWAY_IMAP_PORT=str(imap_port),
            GATEWAY_IMAPS_PORT="0",
            GATEWAY_ADMIN_PORT="0",
            GATEWAY_SUBMISSION_PORT="0",
            GATEWAY_SMTPS_PORT="0",
        )
        _run(env, "migrate")  # only serve and migrate create a data directory
        _run(env, "user", "add", "alice", stdin="alice-pw\n")
        _run(
            env,
            *("source", "add", "--user", "alice", "--name", "work", "--protocol", "imap"),
            *("--host", "127.0.0.1", "--port", str(dovecot.imap_port), "--security", "none"),
            *("--username", "push", "--option", "allow_plaintext=true"),
            stdin="pw\n",
        )
        log_path = tmp_path / "gateway.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [GATEWAY, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=log, text=True
            )
            try:
                _wait_for_port(imap_port, 60)
                yield dovecot, imap_port, log_path
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
        assert process.returncode == 0, log_path.read_text()[-3000:]


def _exists_after(client: IMAPClient, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for response in client.idle_check(timeout=max(0.05, deadline - time.monotonic())):
            if len(response) >= 2 and response[1] == b"EXISTS" and int(response[0]) >= count:
                return True
    return False


def test_mail_at_an_idle_source_reaches_a_gateway_idle_client_in_under_two_seconds(
    gateway_with_source: tuple[DovecotServer, int, Path],
) -> None:
    dovecot, port, log_path = gateway_with_source
    client = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=30)
    client.login("alice", "alice-pw")
    deadline = time.monotonic() + 30
    while client.select_folder("INBOX")[b"EXISTS"] < 1:  # the first sync after start-up
        assert time.monotonic() < deadline, "the first sync never arrived"
        time.sleep(0.2)
    source = IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=30)
    source.login("push", "pw")
    latencies = []
    for n in range(MESSAGES):
        client.idle()
        started = time.monotonic()
        source.append("INBOX", f"Subject: pushed {n}\r\n\r\nbody {n}\r\n".encode())
        arrived = _exists_after(client, 2 + n, timeout=15)
        latencies.append(time.monotonic() - started)
        client.idle_done()
        assert arrived, (
            f"message {n} never reached the gateway's IDLE client; gateway log:\n"
            + log_path.read_text()[-6000:]
        )
    median = statistics.median(latencies)
    print(
        f"\npush latency over {MESSAGES}: median {median * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )
    assert median < 2.0, latencies
    assert max(latencies) < 5.0, latencies
    client.logout()
    source.logout()
