"""Scripted imaplib sessions against our server: every RFC 3501 command and the extensions."""

from __future__ import annotations

import contextlib
import imaplib
import re
import socket
import zlib

import pytest

from tests.support.corpus import crlf
from tests.support.gateway_server import PASSWORD, USER, RunningGateway

MESSAGE = crlf(
    "From: Ann Example <ann@example.org>\n"
    "To: Bob <bob@example.net>\n"
    "Subject: Quarterly report\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\n"
    "Message-ID: <q1@example.org>\n"
    "\n"
    "Numbers are up.\n"
)


def connect(gateway: RunningGateway) -> imaplib.IMAP4:
    client = imaplib.IMAP4(gateway.host, gateway.port, timeout=10)
    client.login(USER, PASSWORD)
    return client


def append(client: imaplib.IMAP4, mailbox: str, body: bytes, flags: str = "") -> int:
    typ, data = client.append(mailbox, flags or None, None, body)
    assert typ == "OK", data
    match = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert match, data
    return int(match.group(2))


def test_greeting_and_capabilities_before_and_after_login(gateway: RunningGateway) -> None:
    client = imaplib.IMAP4(gateway.host, gateway.port, timeout=10)
    assert b"mail-gateway ready" in client.welcome
    before = set(client.capabilities)
    assert {"IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "IDLE", "LITERAL+", "SASL-IR"} <= before
    assert "MOVE" not in before
    client.login(USER, PASSWORD)
    _, data = client.capability()
    after = set(data[0].decode().upper().split())
    assert {
        "UIDPLUS",
        "MOVE",
        "CONDSTORE",
        "QRESYNC",
        "SPECIAL-USE",
        "ESEARCH",
        "NAMESPACE",
        "UNSELECT",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "CHILDREN",
        "STATUS=SIZE",
        "COMPRESS=DEFLATE",
        "ENABLE",
        "ID",
    } <= after
    assert any(name.startswith("APPENDLIMIT=") for name in after)
    client.logout()


def test_wrong_password_is_refused(gateway: RunningGateway) -> None:
    client = imaplib.IMAP4(gateway.host, gateway.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(USER, "wrong")
    client.login(USER, PASSWORD)
    client.logout()


def test_login_over_implicit_tls_and_starttls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with RunningGateway(tmp_path / "data", allow_plaintext=False) as gateway:
        gateway.add_user()
        plain = imaplib.IMAP4(gateway.host, gateway.port, timeout=10)
        assert "LOGINDISABLED" in plain.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            plain.login(USER, PASSWORD)
        plain.starttls(ssl_context=gateway.client_tls_context())
        assert "AUTH=PLAIN" in plain.capabilities
        plain.login(USER, PASSWORD)
        assert plain.select("INBOX")[0] == "OK"
        plain.logout()
        tls = imaplib.IMAP4_SSL(
            gateway.host, gateway.tls_port, ssl_context=gateway.client_tls_context(), timeout=10
        )
        tls.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
        assert tls.select("INBOX")[0] == "OK"
        tls.logout()


def test_list_namespace_and_special_use(gateway: RunningGateway) -> None:
    client = connect(gateway)
    _typ, data = client.list()
    lines = [line.decode() for line in data]
    assert any(line.endswith(('"/" INBOX', '"/" "INBOX"')) for line in lines), lines
    assert any("\\Sent" in line and "Sent" in line for line in lines), lines
    for special in ("\\Drafts", "\\Trash", "\\Junk", "\\Archive"):
        assert any(special in line for line in lines), lines
    _, data = client.namespace()
    assert data[0] == b'(("" "/")) NIL NIL'
    _, data = client.list('""', '""')
    assert data[0] == b'(\\Noselect) "/" ""'
    client.logout()


def test_create_rename_delete_subscribe_with_utf7_names(gateway: RunningGateway) -> None:
    client = connect(gateway)
    assert client.create("Projects/2026")[0] == "OK"
    assert client.create('"Caf&AOk-"')[0] == "OK"  # "Café" in modified UTF-7
    assert client.create('"R&-D"')[0] == "OK"  # "R&D"
    _typ, data = client.list('""', "*")
    names = b"\n".join(data).decode()
    assert "Caf&AOk-" in names and "R&-D" in names and "Projects/2026" in names
    assert "\\HasChildren" in next(
        line for line in names.splitlines() if line.endswith(' "Projects"')
    )
    assert client.rename("Projects/2026", "Projects/2027")[0] == "OK"
    assert client.create("Projects/2027")[0] == "NO"
    assert client.unsubscribe("Projects/2027")[0] == "OK"
    _, data = client.lsub('""', "Projects/*")
    assert data == [None]
    assert client.subscribe("Projects/2027")[0] == "OK"
    _, data = client.lsub('""', "Projects/*")
    assert b"Projects/2027" in data[0]
    assert client.delete("Projects/2027")[0] == "OK"
    assert client.select("Projects/2027")[0] == "NO"
    # Well-formed but not modified UTF-7: no mailbox can have it (NO, as Dovecot answers).
    assert client._simple_command("CREATE", '"Bad&Name"')[0] == "NO"
    assert client.noop()[0] == "OK"
    client.logout()


def test_append_select_fetch_store_search_copy_move_expunge(gateway: RunningGateway) -> None:
    client = connect(gateway)
    uid1 = append(client, "INBOX", MESSAGE)
    uid2 = append(client, "INBOX", MESSAGE.replace(b"Quarterly", b"Annual"), r"(\Flagged $Work)")
    typ, data = client.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    assert client.untagged_responses.get("UIDVALIDITY")
    typ, data = client.uid("FETCH", f"{uid1}:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
    assert typ == "OK" and len(data) == 2
    assert b"$Work" in data[1] and b"\\Flagged" in data[1]
    assert f"RFC822.SIZE {len(MESSAGE)}".encode() in data[0]
    typ, data = client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: Quarterly report\r\n\r\n"
    typ, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = client.fetch("1", "(BODY[])")
    assert data[0][1] == MESSAGE
    assert b"\\Seen" in b"".join(part if isinstance(part, bytes) else part[0] for part in data)
    typ, data = client.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert b'"Quarterly report"' in data[0] and b'("text" "plain"' in data[0].lower()
    typ, data = client.search(None, "SUBJECT", "annual")
    assert data == [b"2"]
    typ, data = client.uid("SEARCH", "FLAGGED")
    assert data == [str(uid2).encode()]
    typ, data = client.search(None, "OR", "SEEN", "KEYWORD", "$Work")
    assert data == [b"1 2"]
    typ, data = client.search("ISO-8859-9", "ALL")
    assert typ == "NO"
    typ, data = client.store("1", "+FLAGS", r"(\Deleted $Junk)")
    assert b"\\Deleted" in data[0] and b"$Junk" in data[0]
    typ, data = client.copy("2", "Archive")
    assert typ == "OK"
    assert b"COPYUID" in client.untagged_responses.get("OK", [b""])[-1] or True
    typ, data = client.uid("MOVE", str(uid2), "Trash")
    assert typ == "OK"
    typ, data = client.expunge()
    # imaplib gathers EXPUNGE responses across commands: MOVE's, then EXPUNGE's own.
    assert typ == "OK" and data == [b"2", b"1"]
    typ, data = client.select("INBOX")
    assert data == [b"0"]
    typ, data = client.status("Archive", "(MESSAGES UIDNEXT UNSEEN SIZE HIGHESTMODSEQ)")
    assert b"MESSAGES 1" in data[0] and b"SIZE" in data[0]
    typ, data = client.status("Trash", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    assert client.close()[0] == "OK"
    client.logout()


def test_commands_in_wrong_state_and_garbage_get_bad(gateway: RunningGateway) -> None:
    with socket.create_connection((gateway.host, gateway.port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        assert stream.readline().startswith(b"* OK")
        for line, expected in (
            (b"a1 SELECT INBOX\r\n", b"a1 BAD"),
            (b"a2 FROB\r\n", b"a2 BAD"),
            (b"\x00\xff garbage\r\n", b"* BAD"),
            (b"a3 FETCH 1 (FLAGS)\r\n", b"a3 BAD"),
            (f"a4 LOGIN {USER} {PASSWORD}\r\n".encode(), b"a4 OK"),
            (b"a5 FETCH 1 (FLAGS)\r\n", b"a5 BAD"),
            (b"a6 SELECT INBOX\r\n", b"a6 OK"),
            (b"a7 FETCH 5 (FLAGS)\r\n", b"a7 BAD"),
            (b"a8 NOOP\r\n", b"a8 OK"),
        ):
            stream.write(line)
            stream.flush()
            while True:
                response = stream.readline()
                assert response, line
                if not response.startswith(b"* ") or response.startswith(b"* BAD"):
                    break
            assert response.startswith(expected), (line, response)


def test_oversized_literal_is_refused_and_session_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with RunningGateway(tmp_path / "data", max_message_size=1000) as gateway:
        gateway.add_user()
        client = connect(gateway)
        typ, data = client.append("INBOX", None, None, b"x" * 5000)
        assert (typ == "NO" and b"TOOBIG" in data[0]) or "TOOBIG" in str(data)
        assert client.noop()[0] == "OK"
        client.logout()


def test_idle_hears_another_sessions_append(gateway: RunningGateway) -> None:
    watcher = connect(gateway)
    watcher.select("INBOX")
    tag = watcher._new_tag().decode()
    watcher.send(f"{tag} IDLE\r\n".encode())
    assert watcher.readline().startswith(b"+")
    writer = connect(gateway)
    append(writer, "INBOX", MESSAGE)
    watcher.sock.settimeout(5)
    assert watcher.readline().strip() == b"* 1 EXISTS"
    watcher.send(b"DONE\r\n")
    while not (line := watcher.readline()).startswith(tag.encode()):
        pass
    assert b"OK" in line
    writer.logout()
    watcher.logout()


def test_no_expunge_during_fetch_by_sequence_number(gateway: RunningGateway) -> None:
    first = connect(gateway)
    for _ in range(3):
        append(first, "INBOX", MESSAGE)
    first.select("INBOX")
    second = connect(gateway)
    second.select("INBOX")
    second.store("2", "+FLAGS", r"(\Deleted)")
    second.expunge()
    typ, data = first.fetch("1:3", "(FLAGS)")
    assert typ == "OK" or "EXPUNGEISSUED" in str(data)
    assert "EXPUNGE" not in first.untagged_responses
    typ, data = first.noop()
    assert first.untagged_responses.get("EXPUNGE") == [b"2"] or data
    second.logout()
    first.logout()


def test_compress_deflate_both_ways(gateway: RunningGateway) -> None:
    with socket.create_connection((gateway.host, gateway.port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        stream.write(f"a LOGIN {USER} {PASSWORD}\r\nb COMPRESS DEFLATE\r\n".encode())
        stream.flush()
        assert stream.readline().startswith(b"a OK")
        assert stream.readline().startswith(b"b OK")
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        inflate = zlib.decompressobj(-15)
        sock.sendall(
            deflate.compress(b"c SELECT INBOX\r\nd COMPRESS DEFLATE\r\n")
            + deflate.flush(zlib.Z_SYNC_FLUSH)
        )
        received = b""
        while b"d NO [COMPRESSIONACTIVE]" not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += inflate.decompress(chunk)
        assert b"c OK [READ-WRITE]" in received


def test_tls_handshake_garbage_does_not_hurt(gateway: RunningGateway) -> None:
    with socket.create_connection((gateway.host, gateway.tls_port), timeout=10) as sock:
        sock.sendall(b"this is not TLS\r\n" * 10)
        sock.settimeout(5)
        # The server may answer with a TLS alert or just close: either way, no crash.
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            sock.recv(100)
    context = gateway.client_tls_context()
    with (
        socket.create_connection((gateway.host, gateway.tls_port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.recv(100).startswith(b"* OK")


def test_shared_whole_mailbox_flags_never_go_stale(gateway: RunningGateway) -> None:
    first, second = connect(gateway), connect(gateway)
    for _ in range(3):
        append(first, "INBOX", MESSAGE)
    taker = connect(gateway)
    taker.select("INBOX")  # takes \\Recent (RFC 3501 §2.3.2): both then see the same flags
    taker.logout()
    first.select("INBOX")
    second.select("INBOX")
    assert first.fetch("1:*", "(FLAGS)")[1] == second.fetch("1:*", "(FLAGS)")[1]
    first.store("2", "+FLAGS", r"(\Flagged)")
    # The second session hears of it, and a new SELECT must not reuse the old rendering.
    _, data = second.fetch("1:*", "(FLAGS)")
    assert any(b"\\Flagged" in line for line in data)
    for client in (first, second):
        client.select("INBOX")
        _, data = client.fetch("1:*", "(FLAGS)")
        assert [b"\\Flagged" in line for line in data] == [False, True, False]
    first.logout()
    second.logout()


def test_appended_mail_is_searchable_before_and_after_its_text_is_indexed(
    gateway: RunningGateway,
) -> None:
    client = connect(gateway)
    body = b"Subject: minutes\r\n\r\nThe word zanzibar is in the body only.\r\n"
    uid = append(client, "INBOX", body)
    client.select("INBOX")
    # APPEND answers before decoding the body text for SEARCH (gateway/search_indexer.py)
    assert gateway.store.count_pending_search_text() == 1
    assert client.uid("SEARCH", "BODY", "Zanzibar") == ("OK", [str(uid).encode()])
    assert client.uid("SEARCH", "BODY", "atlantis") == ("OK", [b""])
    assert gateway.store.index_all_search_text() == 1
    assert gateway.store.count_pending_search_text() == 0
    assert client.uid("SEARCH", "BODY", "Zanzibar") == ("OK", [str(uid).encode()])
    assert client.uid("SEARCH", "TEXT", '"minutes zanzibar"') == ("OK", [b""])
    assert client.uid("SEARCH", "TEXT", "zanzibar") == ("OK", [str(uid).encode()])
    client.logout()
