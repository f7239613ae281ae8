"""Scripted imapclient sessions against our server: every command and extension we advertise.

One server serves the whole module (starting one costs most of a second); every test logs in as
its own user, so tests never see each other's mail.
"""

from __future__ import annotations

import itertools
import re
import socket
import statistics
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_types import Envelope

from tests.support.corpus import crlf
from tests.support.gateway_server import RunningGateway

PASSWORD = "client-test-pw"

PLAIN = crlf(
    "From: Ann Example <ann@example.org>\n"
    "To: Bob <bob@example.net>\n"
    "Cc: carol@example.com\n"
    "Subject: Quarterly report\n"
    "Date: Mon, 7 Feb 1994 21:52:25 -0800\n"
    "Message-ID: <q1@example.org>\n"
    "X-Priority: 1\n"
    "\n"
    "Numbers are up.\n"
)
MULTIPART = crlf(
    "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\n"
    "To: Bob <bob@example.net>\n"
    "Subject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?= menu\n"
    "Date: Tue, 3 Mar 2026 10:00:00 +0100\n"
    "Message-ID: <m1@example.de>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="b1"\n'
    "\n"
    "preamble\n"
    "--b1\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Der Kaffee ist heiß und süß.\n"
    "--b1\n"
    "Content-Type: application/octet-stream; name=data.bin\n"
    "Content-Disposition: attachment; filename=data.bin\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECAwQFBgcICQ==\n"
    "--b1--\n"
)
_users = itertools.count(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with RunningGateway(tmp_path_factory.mktemp("imapclient") / "data") as running:
        yield running


class Account:
    """A user of one test's own, and the clients logged in as it."""

    def __init__(self, server: RunningGateway, name: str) -> None:
        self.server = server
        self.name = name
        self.clients: list[IMAPClient] = []

    def connect(self, *, tls: bool = False) -> IMAPClient:
        server = self.server
        if tls:
            context = server.client_tls_context()
            client = IMAPClient(
                server.host, port=server.tls_port, ssl=True, ssl_context=context, timeout=10
            )
        else:
            client = IMAPClient(server.host, port=server.port, ssl=False, timeout=10)
        client.login(self.name, PASSWORD)
        self.clients.append(client)
        return client


@pytest.fixture
def account(server: RunningGateway) -> Iterator[Account]:
    name = f"user{next(_users)}"
    server.add_user(name, PASSWORD)
    created = Account(server, name)
    yield created
    for client in created.clients:
        if client._imap.state != "LOGOUT":
            client.logout()


def raw(client: IMAPClient, command: str, *args: str, uid: bool = False) -> tuple[str, list]:
    """Send a command imapclient has no method for; returns imaplib's (typ, data)."""
    use_uid = client.use_uid
    client.use_uid = uid
    try:
        return client._raw_command(command.encode(), [arg.encode() for arg in args], uid=uid)
    finally:
        client.use_uid = use_uid


def untagged(client: IMAPClient, name: str) -> list[bytes]:
    """Take (and clear) the untagged responses imaplib collected under `name`."""
    return client._imap.untagged_responses.pop(name, [])


def append_all(client: IMAPClient, folder: str, messages: list[bytes]) -> list[int]:
    uids = []
    for message in messages:
        response = client.append(folder, message)
        match = re.search(rb"APPENDUID \d+ (\d+)", response)
        assert match, response
        uids.append(int(match.group(1)))
    return uids


# --- session, capabilities, mailboxes -------------------------------------------------------


def test_login_capability_id_namespace(account: Account) -> None:
    client = account.connect()
    names = set(client.capabilities())
    assert {
        b"IMAP4REV1",
        b"IDLE",
        b"UIDPLUS",
        b"MOVE",
        b"CONDSTORE",
        b"QRESYNC",
        b"ESEARCH",
        b"LIST-EXTENDED",
        b"LIST-STATUS",
        b"SPECIAL-USE",
        b"STATUS=SIZE",
        b"ENABLE",
        b"UNSELECT",
        b"NAMESPACE",
        b"ID",
    } <= names
    server_id = client.id_({"name": "imapclient-test", "version": "1"})
    assert server_id[0][:2] == (b"name", b"mail-gateway")
    namespace = client.namespace()
    assert namespace.personal == (("", "/"),)
    assert namespace.other is None and namespace.shared is None
    assert client.noop()[0] == b"NOOP completed"


def test_list_lsub_and_list_extended(account: Account) -> None:
    client = account.connect()
    client.create_folder("Projects/2026")
    client.subscribe_folder("Projects/2026")
    folders = {name: flags for flags, _, name in client.list_folders()}
    assert {
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
        "Projects",
        "Projects/2026",
    } <= set(folders)
    assert b"\\HasChildren" in folders["Projects"]
    assert b"\\HasNoChildren" in folders["Projects/2026"]
    assert client.find_special_folder(b"\\Sent") == "Sent"
    assert client.find_special_folder(b"\\Trash") == "Trash"
    assert [name for _, _, name in client.list_folders("Projects/", "%")] == ["Projects/2026"]
    subscribed = [name for _, _, name in client.list_sub_folders()]
    assert "Projects/2026" in subscribed and "INBOX" in subscribed
    append_all(client, "Sent", [PLAIN, MULTIPART])
    # RFC 5258 + RFC 6154 + RFC 5819: one LIST answering special use and status at once.
    typ, _ = raw(
        client, "LIST", '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))"
    )
    assert typ == "OK"
    lines = untagged(client, "LIST")
    statuses = untagged(client, "STATUS")
    assert any(b"\\Sent" in line and line.endswith(b'"/" "Sent"') for line in lines), lines
    sizes = len(PLAIN) + len(MULTIPART)
    assert f'"Sent" (MESSAGES 2 UNSEEN 2 SIZE {sizes})'.encode() in statuses, statuses
    assert len(statuses) == len(lines)
    # Selection option: only mailboxes with a special use.
    typ, _ = raw(client, "LIST", "(SPECIAL-USE)", '""', '"*"')
    assert typ == "OK"
    special = untagged(client, "LIST")
    assert len(special) == 5 and not any(b"INBOX" in line for line in special), special
    typ, _ = raw(client, "LIST", "(SUBSCRIBED)", '""', '"Projects/*"')
    (line,) = untagged(client, "LIST")
    assert line.endswith(b'"/" "Projects/2026"') and b"\\Subscribed" in line, line


def test_status_items(account: Account) -> None:
    client = account.connect()
    append_all(client, "INBOX", [PLAIN, MULTIPART])
    client.select_folder("INBOX")
    client.add_flags([1], [b"\\Seen"])
    client.unselect_folder()
    status = client.folder_status(
        "INBOX",
        [b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"SIZE", b"HIGHESTMODSEQ"],
    )
    assert status[b"MESSAGES"] == 2
    assert status[b"UNSEEN"] == 1
    assert status[b"UIDNEXT"] == 3
    assert status[b"SIZE"] == len(PLAIN) + len(MULTIPART)
    assert status[b"HIGHESTMODSEQ"] >= 3
    assert status[b"UIDVALIDITY"] > 0
    with pytest.raises(IMAPClientError, match="NONEXISTENT"):
        client.folder_status("Nowhere", [b"MESSAGES"])


def test_create_rename_delete_subscribe(account: Account) -> None:
    client = account.connect()
    client.create_folder("Work/Clients/Acme")
    client.create_folder("Café")  # imapclient sends modified UTF-7
    assert client.folder_exists("Work/Clients")
    assert client.folder_exists("Café")
    append_all(client, "Work/Clients/Acme", [PLAIN])
    client.rename_folder("Work", "Jobs")
    names = {name for _, _, name in client.list_folders()}
    assert {"Jobs", "Jobs/Clients", "Jobs/Clients/Acme", "Café"} <= names
    assert not {"Work", "Work/Clients"} & names
    assert client.folder_status("Jobs/Clients/Acme", [b"MESSAGES"])[b"MESSAGES"] == 1
    with pytest.raises(IMAPClientError):
        client.create_folder("Jobs")
    with pytest.raises(IMAPClientError):
        client.rename_folder("Jobs", "Café")
    client.subscribe_folder("Café")
    assert "Café" in [name for _, _, name in client.list_sub_folders()]
    client.unsubscribe_folder("Café")
    assert "Café" not in [name for _, _, name in client.list_sub_folders()]
    client.delete_folder("Jobs/Clients/Acme")
    client.delete_folder("Café")
    assert not client.folder_exists("Café")
    with pytest.raises(IMAPClientError):
        client.delete_folder("INBOX")
    with pytest.raises(IMAPClientError):
        client.select_folder("Jobs/Clients/Acme")


def test_rename_inbox_moves_messages_and_leaves_inbox_empty(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN, MULTIPART, PLAIN])
    client.select_folder("INBOX")
    client.add_flags(uids[1:2], [b"\\Flagged", b"$Work"])
    client.unselect_folder()
    before = client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    # RFC 3501 §6.3.5: renaming INBOX moves its messages to a new mailbox; INBOX stays, empty.
    client.rename_folder("INBOX", "Old Inbox")
    assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0
    assert client.folder_status("Old Inbox", [b"MESSAGES"])[b"MESSAGES"] == 3
    assert client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"] == before
    client.select_folder("Old Inbox")
    flags = client.get_flags(client.search("ALL"))
    assert sorted(flags.values()) == [(), (), (b"\\Flagged", b"$Work")]
    assert client.fetch([min(flags)], ["BODY.PEEK[]"])[min(flags)][b"BODY[]"] == PLAIN
    assert append_all(client, "INBOX", [PLAIN]) == [uids[-1] + 1]


# --- APPEND, SELECT/EXAMINE, FETCH ----------------------------------------------------------


def test_append_with_flags_and_date(account: Account) -> None:
    client = account.connect()
    when = datetime(2025, 12, 24, 18, 30, 15, tzinfo=timezone(timedelta(hours=-5)))
    response = client.append("Archive", MULTIPART, flags=[b"\\Seen", b"$Forwarded"], msg_time=when)
    assert re.match(rb"\[APPENDUID \d+ 1\]", response)
    with pytest.raises(IMAPClientError, match="TRYCREATE"):
        client.append("No Such Box", PLAIN)
    client.normalise_times = False
    client.select_folder("Archive")
    data = client.fetch([1], ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])[1]
    # Appended here, so \\Recent to the first session that selects it (RFC 3501 §2.3.2).
    assert set(data[b"FLAGS"]) == {b"\\Seen", b"$Forwarded", b"\\Recent"}
    assert data[b"INTERNALDATE"] == when
    assert data[b"RFC822.SIZE"] == len(MULTIPART)


def test_examine_is_read_only(account: Account) -> None:
    client = account.connect()
    append_all(client, "INBOX", [PLAIN])
    info = client.select_folder("INBOX", readonly=True)
    assert info[b"READ-ONLY"] == [b""]
    assert info[b"EXISTS"] == 1
    assert client.fetch([1], ["BODY[]"])[1][b"BODY[]"] == PLAIN
    # BODY[] on EXAMINE leaves \Seen unset, and EXAMINE leaves \Recent (RFC 3501 §6.3.2).
    assert client.get_flags([1]) == {1: (b"\\Recent",)}
    with pytest.raises(IMAPClientError, match="READ-ONLY"):
        client.add_flags([1], [b"\\Seen"])
    with pytest.raises(IMAPClientError, match="READ-ONLY"):
        client.expunge()
    with pytest.raises(IMAPClientError, match="READ-ONLY"):
        client.move([1], "Trash")
    client.close_folder()
    info = client.select_folder("INBOX")
    assert info[b"READ-WRITE"] is True
    assert b"\\*" in info[b"PERMANENTFLAGS"]


def test_fetch_every_item(account: Account) -> None:
    client = account.connect()
    append_all(client, "INBOX", [PLAIN, MULTIPART])
    account.connect().select_folder("INBOX")  # takes \\Recent, so FLAGS below are exact
    client.select_folder("INBOX")
    header, _, text = MULTIPART.partition(b"\r\n\r\n")
    data = client.fetch(
        [2],
        [
            "BODY.PEEK[]",
            "BODY.PEEK[HEADER]",
            "BODY.PEEK[TEXT]",
            "BODY.PEEK[1]",
            "BODY.PEEK[1.MIME]",
            "BODY.PEEK[2]",
            "BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)]",
            "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT MESSAGE-ID FROM TO DATE CONTENT-TYPE)]",
            "BODY.PEEK[]<0.20>",
            "BODY.PEEK[TEXT]<9.5000>",
            "RFC822.SIZE",
            "INTERNALDATE",
            "FLAGS",
            "UID",
            "MODSEQ",
        ],
    )[2]
    assert data[b"BODY[]"] == MULTIPART
    assert data[b"BODY[HEADER]"] == header + b"\r\n\r\n"
    assert data[b"BODY[TEXT]"] == text
    assert data[b"BODY[1]"] == "Der Kaffee ist heiß und süß.".encode()
    assert data[b"BODY[1.MIME]"] == (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    assert data[b"BODY[2]"] == b"AAECAwQFBgcICQ=="
    assert data[b"BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)]"] == (
        b"Subject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?= menu\r\nMessage-ID: <m1@example.de>\r\n\r\n"
    )
    assert data[b"BODY[HEADER.FIELDS.NOT (SUBJECT MESSAGE-ID FROM TO DATE CONTENT-TYPE)]"] == (
        b"MIME-Version: 1.0\r\n\r\n"
    )
    assert data[b"BODY[]<0>"] == MULTIPART[:20]
    assert data[b"BODY[TEXT]<9>"] == text[9:]
    assert data[b"RFC822.SIZE"] == len(MULTIPART)
    assert isinstance(data[b"INTERNALDATE"], datetime)
    assert data[b"FLAGS"] == ()
    assert data[b"SEQ"] == 2
    assert data[b"MODSEQ"][0] > 0
    # Partial past the end is empty, not an error (RFC 3501 §6.4.5).
    assert client.fetch([1], ["BODY.PEEK[]<100000.10>"])[1][b"BODY[]<100000>"] == b""

    data = client.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.HEADER"])
    envelope: Envelope = data[1][b"ENVELOPE"]
    assert envelope.subject == b"Quarterly report"
    assert envelope.message_id == b"<q1@example.org>"
    assert envelope.from_[0].name == b"Ann Example"
    assert envelope.from_[0].mailbox == b"ann" and envelope.from_[0].host == b"example.org"
    assert envelope.cc[0].mailbox == b"carol"
    assert envelope.date == datetime(1994, 2, 8, 5, 52, 25)
    assert data[1][b"RFC822.HEADER"] == PLAIN.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    structure = data[2][b"BODYSTRUCTURE"]
    assert structure.is_multipart
    parts, subtype = structure[0], structure[1]
    assert subtype == b"mixed" and len(parts) == 2
    assert parts[0][:2] == (b"text", b"plain") and parts[0][2] == (b"charset", b"utf-8")
    assert parts[1][:2] == (b"application", b"octet-stream")
    assert data[2][b"BODY"][1] == b"mixed"
    assert client.get_flags([1, 2]) == {1: (), 2: ()}  # only PEEK so far: still unseen

    # RFC822 and BODY[] (not PEEK) set \Seen and report it (RFC 3501 §6.4.5).
    data = client.fetch([1], ["RFC822"])[1]
    assert data[b"RFC822"] == PLAIN
    assert b"\\Seen" in data[b"FLAGS"]
    data = client.fetch([2], ["RFC822.TEXT"])[2]
    assert data[b"RFC822.TEXT"] == text
    assert b"\\Seen" in data[b"FLAGS"]
    client.use_uid = False
    assert client.fetch([1, 2], ["UID"]) == {1: {b"UID": 1, b"SEQ": 1}, 2: {b"UID": 2, b"SEQ": 2}}


# --- STORE and keywords -----------------------------------------------------------------------


def test_store_flags_silent_and_keywords_persist(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN, PLAIN, PLAIN])
    account.connect().select_folder("INBOX")  # takes \\Recent, so FLAGS below are exact
    client.select_folder("INBOX")
    assert client.add_flags(uids[:2], [b"\\Flagged", b"$Junk"]) == {
        uids[0]: (b"\\Flagged", b"$Junk"),
        uids[1]: (b"\\Flagged", b"$Junk"),
    }
    assert client.remove_flags(uids[1:2], [b"$Junk"]) == {uids[1]: (b"\\Flagged",)}
    assert client.set_flags(uids[2:], [b"$Forwarded", b"ProjectX", b"\\Answered"]) == {
        uids[2]: (b"\\Answered", b"$Forwarded", b"ProjectX")
    }
    assert client.add_flags(uids[:1], [b"\\Seen"], silent=True) is None
    assert client.remove_flags(uids[:1], [b"\\Flagged"], silent=True) is None
    assert client.set_flags(uids[1:2], [b"\\Draft"], silent=True) is None
    # \Recent cannot be stored (RFC 3501 §2.3.2) and does not break the command.
    client.add_flags(uids[1:2], [b"\\Recent"], silent=True)
    expected = {
        uids[0]: {b"\\Seen", b"$Junk"},
        uids[1]: {b"\\Draft"},
        uids[2]: {b"\\Answered", b"$Forwarded", b"ProjectX"},
    }
    assert {uid: set(flags) for uid, flags in client.get_flags(uids).items()} == expected
    client.logout()

    other = account.connect()
    info = other.select_folder("INBOX")
    for keyword in (b"$Junk", b"$Forwarded", b"ProjectX"):
        assert keyword in info[b"FLAGS"] and keyword in info[b"PERMANENTFLAGS"]
    flags = {uid: set(flags) - {b"\\Recent"} for uid, flags in other.get_flags(uids).items()}
    assert flags == expected
    assert other.search(["KEYWORD", "ProjectX"]) == [uids[2]]
    assert other.search(["UNKEYWORD", "$Junk"]) == uids[1:]


# --- SEARCH and ESEARCH ----------------------------------------------------------------------


def test_search_keys(account: Account) -> None:
    client = account.connect()
    japanese = crlf(
        "From: taro@example.jp\n"
        "Subject: =?utf-8?b?5Lya6K2w44Gu5qGI5YaF?=\n"
        "Date: Wed, 1 Apr 2026 09:00:00 +0900\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "5piO5pel44Gu5Y2I5b6M5LiJ5pmC44GL44KJ44Gn44GZ44CC\n"
    )
    client.select_folder("INBOX")  # appended while selected: \Recent in this session
    uids = append_all(client, "INBOX", [PLAIN, MULTIPART, japanese])
    client.append(
        "INBOX",
        PLAIN.replace(b"Quarterly", b"Yearly"),
        msg_time=datetime(2020, 1, 2, 12, 0, tzinfo=UTC),
    )
    uids.append(uids[-1] + 1)
    client.add_flags(uids[:1], [b"\\Seen", b"\\Answered"])
    client.add_flags(uids[1:2], [b"\\Flagged", b"$Label1"])
    client.add_flags(uids[3:], [b"\\Deleted"])
    cases: list[tuple[list[object], list[int]]] = [
        (["ALL"], uids),
        (["SEEN"], uids[:1]),
        (["UNSEEN"], uids[1:]),
        (["ANSWERED"], uids[:1]),
        (["UNANSWERED", "UNFLAGGED"], uids[2:]),
        (["FLAGGED"], uids[1:2]),
        (["DELETED"], uids[3:]),
        (["UNDELETED"], uids[:3]),
        (["KEYWORD", "$Label1"], uids[1:2]),
        (["NEW"], uids[1:]),
        (["RECENT", "NOT", "SEEN"], uids[1:]),
        (["FROM", "ann@example.org"], [uids[0], uids[3]]),
        (["FROM", "Müller"], uids[1:2]),
        (["TO", "bob"], [uids[0], uids[1], uids[3]]),
        (["CC", "carol"], [uids[0], uids[3]]),
        (["SUBJECT", "quarterly"], uids[:1]),
        (["SUBJECT", "café"], uids[1:2]),
        (["SUBJECT", "会議"], uids[2:3]),
        (["BODY", "heiß"], uids[1:2]),
        (["BODY", "午後三時"], uids[2:3]),
        (["TEXT", "numbers are up"], [uids[0], uids[3]]),
        (["HEADER", "X-Priority", "1"], [uids[0], uids[3]]),
        (["HEADER", "Message-ID", "m1@example.de"], uids[1:2]),
        (["LARGER", str(len(PLAIN) + 1)], uids[1:3]),
        (["SMALLER", str(len(PLAIN) + 1)], [uids[0], uids[3]]),
        (["BEFORE", "1-Jan-2021"], uids[3:]),
        (["SINCE", "1-Jan-2021"], uids[:3]),
        (["ON", "2-Jan-2020"], uids[3:]),
        (["SENTBEFORE", "1-Jan-2000"], [uids[0], uids[3]]),
        (["SENTSINCE", "1-Apr-2026"], uids[2:3]),
        (["SENTON", "3-Mar-2026"], uids[1:2]),
        (["OR", "FLAGGED", "SEEN"], uids[:2]),
        (["NOT", "OR", "FLAGGED", "SEEN"], uids[2:]),
        (["UID", f"{uids[1]}:{uids[2]}"], uids[1:3]),
        (["UID", "*"], uids[3:]),
        (["2:3"], uids[1:3]),
        (["MODSEQ", "1"], uids),
    ]
    for criteria, expected in cases:
        assert client.search(criteria, charset="UTF-8") == expected, criteria
    assert client.search(["SUBJECT", "Quarterly"]) == uids[:1]  # no CHARSET
    with pytest.raises(IMAPClientError, match="BADCHARSET"):
        client.search(["SUBJECT", "x"], charset="ISO-8859-1")
    with pytest.raises(IMAPClientError):
        client.search(["NOSUCHKEY"])


def test_esearch_return_options(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN] * 6)
    client.select_folder("INBOX")
    client.add_flags([uids[1], uids[2], uids[4]], [b"\\Flagged"])
    typ, _ = raw(client, "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "FLAGGED")
    assert typ == "OK"
    (line,) = untagged(client, "ESEARCH")
    assert re.fullmatch(rb'\(TAG "[^"]+"\) MIN 2 MAX 5 COUNT 3 ALL 2:3,5', line), line
    raw(client, "SEARCH", "RETURN", "(COUNT)", "UNFLAGGED", uid=True)
    (line,) = untagged(client, "ESEARCH")
    assert re.fullmatch(rb'\(TAG "[^"]+"\) UID COUNT 3', line), line
    raw(client, "SEARCH", "RETURN", "()", "ALL", uid=True)  # () means ALL (RFC 4731 §3.1)
    (line,) = untagged(client, "ESEARCH")
    assert line.endswith(f"UID ALL {uids[0]}:{uids[-1]}".encode()), line
    raw(client, "SEARCH", "RETURN", "(MIN MAX)", "KEYWORD", "nothing")
    (line,) = untagged(client, "ESEARCH")
    assert re.fullmatch(rb'\(TAG "[^"]+"\)', line), line


# --- COPY, MOVE, EXPUNGE, UNSELECT, CLOSE -------------------------------------------------------


def test_copy_and_move_report_copyuid(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN, MULTIPART, PLAIN])
    client.create_folder("Keep")
    client.select_folder("INBOX")
    client.add_flags(uids[:1], [b"$Important"])
    _, (response,) = raw(client, "COPY", f"{uids[0]}:{uids[1]}", "Keep", uid=True)
    assert re.fullmatch(rb"\[COPYUID \d+ 1:2 1:2\] Copy completed", response), response
    with pytest.raises(IMAPClientError, match="TRYCREATE"):
        client.copy(uids[:1], "Nowhere")
    response = client.move(uids[1:], "Archive")
    copyuid = [line for line in untagged(client, "OK") if b"COPYUID" in line]
    assert copyuid and re.match(rb"\[COPYUID \d+ 2:3 1:2\]", copyuid[-1]), copyuid
    assert client.search("ALL") == uids[:1]
    assert client.folder_status("Archive", [b"MESSAGES"])[b"MESSAGES"] == 2
    client.select_folder("Keep")
    assert client.get_flags([1, 2]) == {1: (b"\\Recent", b"$Important"), 2: (b"\\Recent",)}
    assert client.fetch([2], ["BODY.PEEK[]"])[2][b"BODY[]"] == MULTIPART


def test_uid_expunge_unselect_and_close(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN] * 5)
    client.select_folder("INBOX")
    client.add_flags(uids[:4], [b"\\Deleted"])
    # RFC 4315 §2.1: only the named messages that are \Deleted go.
    client.uid_expunge([uids[0], uids[4]])
    assert client.search("ALL") == uids[1:]
    client.unselect_folder()  # UNSELECT leaves \Deleted messages in place
    assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 4
    client.select_folder("INBOX")
    client.remove_flags(uids[3:4], [b"\\Deleted"])
    client.close_folder()  # CLOSE expunges silently
    assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 2
    client.select_folder("INBOX")
    assert client.search("ALL") == [uids[3], uids[4]]
    client.add_flags(uids[3:4], [b"\\Deleted"])
    message, responses = client.expunge()
    assert message == b"Expunge completed"
    assert (1, b"EXPUNGE") in responses
    assert client.search("ALL") == [uids[4]]


# --- CONDSTORE / QRESYNC ------------------------------------------------------------------------


def test_condstore_changedsince_and_unchangedsince(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN] * 4)
    assert client.enable("CONDSTORE") == [b"CONDSTORE"]
    info = client.select_folder("INBOX")
    base = info[b"HIGHESTMODSEQ"]
    client.add_flags(uids[1:2], [b"\\Seen"])
    client.add_flags(uids[3:], [b"$Done"])
    changed = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {base}"])
    assert sorted(changed) == [uids[1], uids[3]]
    assert all(data[b"MODSEQ"][0] > base for data in changed.values())
    # CHANGEDSINCE 0: everything (RFC 7162 §3.1.4.1: mod-sequence-valzer is allowed).
    assert sorted(client.fetch(uids, ["FLAGS"], modifiers=["CHANGEDSINCE 0"])) == uids
    modseqs = {uid: data[b"MODSEQ"][0] for uid, data in client.fetch(uids, ["MODSEQ"]).items()}
    assert modseqs[uids[1]] < modseqs[uids[3]]
    # STORE UNCHANGEDSINCE: messages changed since then are left alone and reported MODIFIED.
    since = modseqs[uids[2]]  # uids[1] and uids[3] changed after uids[2] arrived
    typ, data = raw(
        client,
        "STORE",
        f"{uids[0]}:{uids[3]}",
        f"(UNCHANGEDSINCE {since})",
        "+FLAGS",
        r"(\Flagged)",
        uid=True,
    )
    assert typ == "OK"
    assert data[-1].startswith(f"[MODIFIED {uids[1]},{uids[3]}]".encode()), data
    fetched = untagged(client, "FETCH")
    assert len(fetched) == 2 and all(b"MODSEQ" in line for line in fetched), fetched
    flags = client.get_flags(uids)
    assert [b"\\Flagged" in flags[uid] for uid in uids] == [True, False, True, False]
    # Sequence-number STORE reports MODIFIED with sequence numbers.
    client.use_uid = False
    typ, data = raw(client, "STORE", "1:4", "(UNCHANGEDSINCE 1)", "-FLAGS", r"(\Flagged)")
    assert data[-1].startswith(b"[MODIFIED 1:4]"), data
    status = client.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
    assert status == max(modseqs.values()) + 1


def test_qresync_vanished_and_select_after_changes(account: Account) -> None:
    client = account.connect()
    uids = append_all(client, "INBOX", [PLAIN] * 6)
    assert client.enable("QRESYNC") == [b"QRESYNC"]
    info = client.select_folder("INBOX")
    uidvalidity, since = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]
    client.unselect_folder()

    other = account.connect()
    other.select_folder("INBOX")
    other.add_flags([uids[1], uids[2]], [b"\\Deleted"])
    other.expunge()
    other.add_flags(uids[4:5], [b"\\Answered", b"$Replied"])
    other.logout()

    # RFC 7162 §3.2.5: SELECT … (QRESYNC (uidvalidity modseq)) says what vanished and changed.
    typ, _ = raw(client, "SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {since}))")
    assert typ == "OK"
    client._imap.state = "SELECTED"  # imaplib did not see the raw SELECT
    assert untagged(client, "VANISHED") == [f"(EARLIER) {uids[1]}:{uids[2]}".encode()]
    fetched = untagged(client, "FETCH")
    assert len(fetched) == 1 and f"UID {uids[4]} ".encode() in fetched[0], fetched
    assert b"\\Answered" in fetched[0] and b"$Replied" in fetched[0]
    # Known-UIDs narrow the VANISHED answer.
    typ, _ = raw(
        client, "SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {since} {uids[2]}:{uids[5]}))"
    )
    assert untagged(client, "VANISHED") == [f"(EARLIER) {uids[2]}".encode()]
    untagged(client, "FETCH")
    # UID FETCH … (CHANGEDSINCE n VANISHED) (RFC 7162 §3.2.6).
    typ, _ = raw(client, "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {since} VANISHED)", uid=True)
    assert typ == "OK"
    assert untagged(client, "VANISHED") == [f"(EARLIER) {uids[1]}:{uids[2]}".encode()]
    fetched = untagged(client, "FETCH")
    assert len(fetched) == 1 and b"MODSEQ" in fetched[0] and b"$Replied" in fetched[0]
    # A wrong UIDVALIDITY gets a plain SELECT (no VANISHED, no FETCH).
    raw(client, "SELECT", "INBOX", f"(QRESYNC ({uidvalidity + 1} {since}))")
    assert untagged(client, "VANISHED") == [] and untagged(client, "FETCH") == []
    # With QRESYNC, expunges from another session arrive as VANISHED, not EXPUNGE.
    third = account.connect()
    third.select_folder("INBOX")
    third.add_flags(uids[0:1], [b"\\Deleted"])
    third.expunge()
    client.noop()
    assert untagged(client, "VANISHED") == [str(uids[0]).encode()]


# --- IDLE -------------------------------------------------------------------------------------


def test_idle_hears_append_flags_and_expunge(account: Account) -> None:
    watcher, writer = account.connect(), account.connect()
    uids = append_all(writer, "INBOX", [PLAIN, PLAIN])
    watcher.select_folder("INBOX")
    writer.select_folder("INBOX")
    watcher.idle()
    assert watcher.idle_check(timeout=0.2) == []
    append_all(writer, "INBOX", [MULTIPART])
    assert (3, b"EXISTS") in _idle_until(watcher, (3, b"EXISTS"))
    writer.add_flags(uids[:1], [b"\\Flagged"])
    responses = _idle_until(watcher, b"FETCH")
    assert any(
        r[1] == b"FETCH" and b"\\Flagged" in r[2][r[2].index(b"FLAGS") + 1]
        for r in responses
        if len(r) > 2
    ), responses
    writer.add_flags(uids[1:2], [b"\\Deleted"])
    writer.expunge()
    assert (2, b"EXPUNGE") in _idle_until(watcher, (2, b"EXPUNGE"))
    text, _ = watcher.idle_done()
    assert text == b"IDLE terminated"
    assert watcher.search("ALL") == [uids[0], uids[1] + 1]


def _idle_until(client: IMAPClient, wanted: object, timeout: float = 5.0) -> list[tuple]:
    seen: list[tuple] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(client.idle_check(timeout=deadline - time.monotonic()))
        if any(item == wanted or (len(item) > 1 and item[1] == wanted) for item in seen):
            return seen
    raise AssertionError(f"never saw {wanted!r} in {seen!r}")


def test_idle_latency_is_well_under_a_second(
    account: Account, capsys: pytest.CaptureFixture[str]
) -> None:
    watcher, writer = account.connect(), account.connect()
    watcher.select_folder("INBOX")
    watcher.idle()
    latencies = []
    for count in range(1, 11):
        started = time.monotonic()
        writer.append("INBOX", PLAIN)
        _idle_until(watcher, (count, b"EXISTS"), timeout=1.0)
        latencies.append(time.monotonic() - started)
    watcher.idle_done()
    with capsys.disabled():
        print(
            f"\nIDLE latency (APPEND sent → EXISTS heard): median "
            f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
    assert max(latencies) < 1.0


def test_implicit_tls(account: Account) -> None:
    client = account.connect(tls=True)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0
    assert append_all(client, "INBOX", [MULTIPART]) == [1]
    assert client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == MULTIPART


def test_nothing_follows_compress_ok_until_the_next_command(
    server: RunningGateway, account: Account
) -> None:
    """RFC 4978 §3: after the tagged OK a client may still read plain text; send it nothing.

    An empty DEFLATE sync flush here used to reach mbsync as a NUL-filled "empty response".
    """
    name = account.name
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        stream.readline()
        stream.write(f"a LOGIN {name} {PASSWORD}\r\nb COMPRESS DEFLATE\r\n".encode())
        stream.flush()
        assert stream.readline().startswith(b"a OK")
        assert stream.readline().startswith(b"b OK")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        deflate, inflate = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
        sock.settimeout(10)
        sock.sendall(deflate.compress(b"c NOOP\r\n") + deflate.flush(zlib.Z_SYNC_FLUSH))
        assert inflate.decompress(sock.recv(1000)).startswith(b"c OK")
