"""Issue 13 regressions at the IMAP wire: each failed before the hardening."""

from __future__ import annotations

import socket
import threading
import time
import zlib
from pathlib import Path

import pytest

from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import RawImapClient

MESSAGE = b"From: a@example.org\r\nSubject: hello\r\n\r\nbody text\r\n"


def logged_in(gateway: RunningGateway, user: str = USER, password: str = PASSWORD) -> RawImapClient:
    client = RawImapClient(gateway.host, gateway.port, timeout=30)
    client.login(user, password)
    return client


def test_list_with_a_backtracking_pattern_answers_at_once(gateway: RunningGateway) -> None:
    """Finding 1: `%*` pairs made the regex backtrack for minutes on the event loop."""
    with logged_in(gateway) as client:
        client.command(b"CREATE " + b"a" * 200)
        for pattern in (b"%*" * 30 + b"x", b"%*" * 2000 + b"x"):
            started = time.perf_counter()
            result = client.command(b'LIST "" "' + pattern + b'"')
            assert time.perf_counter() - started < 1.0
            assert result.untagged == []


def test_compressed_input_is_inflated_only_as_the_parser_needs_it(
    gateway: RunningGateway,
) -> None:
    """Finding 2: 12 KB of DEFLATE became 12 MB of input at once, run without a pause."""
    sock = socket.create_connection((gateway.host, gateway.port), timeout=30)
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(f"a LOGIN {USER} {PASSWORD}\r\nb COMPRESS DEFLATE\r\n".encode())
    while not reader.readline().startswith(b"b OK"):
        pass
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    commands = b"n NOOP\r\n" * 200_000 + b"z LOGOUT\r\n"
    flood = deflate.compress(commands) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(flood) < 20_000
    sock.sendall(flood)
    inflate = zlib.decompressobj(-15)
    answered = b""
    started = time.perf_counter()
    while b"z OK" not in answered[-200:]:
        chunk = sock.recv(1 << 20)
        assert chunk, "server closed the connection"
        answered += inflate.decompress(chunk)
        if time.perf_counter() - started > 60:
            pytest.fail("flood not answered in 60 s")
    assert answered.count(b"n OK") == 200_000
    sock.close()


def test_search_with_too_many_keys_or_too_long_is_refused(tmp_path: Path) -> None:
    """Finding 3: ~4,000 NOT TEXT keys per SEARCH held the I/O threads for minutes."""
    with RunningGateway(
        tmp_path / "data", imap_search_max_keys=50, imap_search_timeout_seconds=0.001
    ) as gateway:
        gateway.add_user()
        inbox = gateway.store.get_mailbox(user_id=1, name="INBOX")
        for _ in range(50):
            gateway.store.append_message(mailbox_id=inbox.id, content=MESSAGE)
        with logged_in(gateway) as client:
            client.command(b"SELECT INBOX")
            too_many = client.command(b"SEARCH" + b" NOT TEXT nothing" * 26, check=False)
            assert b"NO [LIMIT]" in too_many.tagged
            slow = client.command(b"SEARCH" + b" NOT TEXT nothing" * 20, check=False)
            assert b"NO [LIMIT]" in slow.tagged
            assert client.command(b"NOOP").tagged.endswith(b"OK NOOP completed")


def test_mailbox_count_depth_and_name_length_are_limited(tmp_path: Path) -> None:
    """Finding 4: one CREATE made 10,000 mailboxes."""
    with RunningGateway(
        tmp_path / "data",
        max_mailboxes_per_user=12,
        max_mailbox_depth=4,
        max_mailbox_name_length=40,
    ) as gateway:
        gateway.add_user()
        with logged_in(gateway) as client:
            deep = client.command(b'CREATE "' + b"b/" * 10_000 + b'x"', check=False)
            assert b"NO [LIMIT]" in deep.tagged
            long_name = client.command(b"CREATE " + b"n" * 41, check=False)
            assert b"NO [LIMIT]" in long_name.tagged
            client.command(b"CREATE a/b/c/d")
            count = len(client.command(b'LIST "" "*"').untagged)
            for number in range(12 - count):
                client.command(f"CREATE m{number}".encode())
            assert b"NO [LIMIT]" in client.command(b"CREATE more", check=False).tagged
            assert b"NO [LIMIT]" in client.command(b"RENAME m0 p/q", check=False).tagged
            assert len(client.command(b'LIST "" "*"').untagged) == 12


@pytest.mark.parametrize("name", [b"..", b"a/..", b"../escaped", b"a/./b"])
def test_dot_levels_are_refused(gateway: RunningGateway, name: bytes) -> None:
    """Finding 6: `..` became a directory level at export."""
    with logged_in(gateway) as client:
        assert b" NO " in client.command(b'CREATE "' + name + b'"', check=False).tagged
        client.command(b"CREATE fine")
        assert b" NO " in client.command(b'RENAME fine "' + name + b'"', check=False).tagged


def test_delete_with_inferiors_keeps_a_noselect_name(gateway: RunningGateway) -> None:
    """Finding 8: RFC 3501 §6.3.4, and the RENAME that then crashed with IntegrityError."""
    with logged_in(gateway) as client:
        for name in (b"a/b", b"d/b"):
            client.command(b"CREATE " + name)
        client.command(b"DELETE d")
        listing = client.command(b'LIST "" "d*"').untagged
        assert listing[0] == b'* LIST (\\HasChildren \\Noselect) "/" "d"\r\n'
        assert b"NONEXISTENT" in client.command(b"SELECT d", check=False).tagged
        assert b"NO" in client.command(b"DELETE d", check=False).tagged
        renamed = client.command(b"RENAME a d", check=False)
        assert b"NO [ALREADYEXISTS]" in renamed.tagged
        client.command(b"CREATE d")  # a mailbox again
        client.command(b"SELECT d")


def test_a_session_whose_mailbox_is_deleted_gets_a_clear_bye(gateway: RunningGateway) -> None:
    """Finding 8: NOOP answered NO [SERVERBUG] until the client reselected."""
    with logged_in(gateway) as deleter, logged_in(gateway) as reader:
        deleter.command(b"CREATE doomed")
        reader.command(b"SELECT doomed")
        deleter.command(b"DELETE doomed")
        reader._sock.sendall(b"x NOOP\r\n")
        answer = reader._read_response()
        assert answer == b"* BYE Selected mailbox was deleted, have to disconnect.\r\n"
    with logged_in(gateway) as deleter, logged_in(gateway) as closer:
        deleter.command(b"CREATE doomed")
        closer.command(b"SELECT doomed")
        deleter.command(b"DELETE doomed")
        assert closer.command(b"CLOSE").tagged.endswith(b"OK Close completed")


def test_imaps_connections_are_counted_before_the_handshake(tmp_path: Path) -> None:
    """Finding 5: 3,000 silent TLS connections were all accepted and held."""
    with RunningGateway(
        tmp_path / "data", imap_connections_per_address=5, imap_tls_handshake_seconds=1
    ) as gateway:
        silent = [socket.create_connection((gateway.host, gateway.tls_port)) for _ in range(5)]
        refused = socket.create_connection((gateway.host, gateway.tls_port), timeout=5)
        # Counted before any TLS byte: the sixth is turned away at once.
        assert refused.recv(100).startswith(b"* BYE Too many connections")
        started = time.perf_counter()
        for sock in silent:
            sock.settimeout(5)
            assert sock.recv(100) == b""  # dropped after the handshake time
        assert time.perf_counter() - started < 3
        context = gateway.client_tls_context()
        with (
            socket.create_connection((gateway.host, gateway.tls_port), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            assert tls.recv(200).startswith(b"* OK")


def test_a_client_that_never_reads_is_disconnected(tmp_path: Path) -> None:
    """Finding 5: the idle timeout covered reads only."""
    with RunningGateway(tmp_path / "data", imap_write_timeout_seconds=1) as gateway:
        gateway.add_user()
        inbox = gateway.store.get_mailbox(user_id=1, name="INBOX")
        big = MESSAGE + b"x" * (4 << 20)
        gateway.store.append_message(mailbox_id=inbox.id, content=big)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((gateway.host, gateway.port))
        sock.sendall(f"a LOGIN {USER} {PASSWORD}\r\nb SELECT INBOX\r\n".encode())
        sock.sendall(b"".join(b"f%d FETCH 1 BODY[]\r\n" % n for n in range(20)))
        deadline = time.monotonic() + 20
        while gateway.server._connections and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not gateway.server._connections, "the connection that never reads is still open"
        sock.close()


def test_parallel_guesses_are_throttled_together(tmp_path: Path) -> None:
    """Finding 7: 100 parallel connections made 200 guesses in 45 s."""
    with RunningGateway(tmp_path / "data", auth_free_failures=2) as gateway:
        gateway.add_user()
        answers: list[bytes] = []

        def guess(number: int) -> None:
            with RawImapClient(gateway.host, gateway.port, timeout=30) as client:
                for attempt in range(3):
                    result = client.command(
                        f"LOGIN {USER} wrong-{number}-{attempt}".encode(), check=False
                    )
                    answers.append(result.tagged)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        checked = sum(b"AUTHENTICATIONFAILED" in answer for answer in answers)
        refused = sum(b"UNAVAILABLE" in answer for answer in answers)
        assert checked + refused == 60
        # 2 free, then one per 1, 2, 4, 8 s slot: the 20 s of patience see about 7 checked.
        assert checked <= 9, (checked, time.perf_counter() - started)


def test_an_own_login_does_not_clear_another_users_failures(tmp_path: Path) -> None:
    """Finding 7: any success cleared the address's counter."""
    with RunningGateway(tmp_path / "data", auth_free_failures=2) as gateway:
        gateway.add_user()
        gateway.add_user("mallory", "mallory-pw")
        client = RawImapClient(gateway.host, gateway.port, timeout=60)
        timings = []
        for attempt in range(5):
            started = time.perf_counter()
            answer = client.command(f"LOGIN {USER} guess{attempt}".encode(), check=False)
            timings.append(time.perf_counter() - started)
            assert b"AUTHENTICATIONFAILED" in answer.tagged
            other = RawImapClient(gateway.host, gateway.port, timeout=60)
            other.login("mallory", "mallory-pw")  # mallory's success clears nothing of alice's
            other.close()
        assert timings[3] >= 0.9 and timings[4] >= 1.9, timings
        client.close()


def test_the_users_own_address_is_not_locked_out_by_guessing_elsewhere(
    tmp_path: Path,
) -> None:
    with RunningGateway(tmp_path / "data", auth_free_failures=1, bind="127.0.0.1") as gateway:
        gateway.add_user()
        logged_in(gateway).close()  # alice's address is now known for alice
        for attempt in range(4):
            stranger = socket.create_connection(
                (gateway.host, gateway.port), source_address=("127.0.0.2", 0)
            )
            stranger.sendall(f"g LOGIN {USER} guess{attempt}\r\n".encode())
            stranger.recv(1000)
            stranger.close()
        started = time.perf_counter()
        logged_in(gateway).close()
        assert time.perf_counter() - started < 1.0


def test_tls_client_still_logs_in(gateway: RunningGateway) -> None:
    context = gateway.client_tls_context()
    with (
        socket.create_connection((gateway.host, gateway.tls_port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.recv(500).startswith(b"* OK")
        tls.sendall(f"a LOGIN {USER} {PASSWORD}\r\n".encode())
        assert b"a OK" in tls.recv(500)
