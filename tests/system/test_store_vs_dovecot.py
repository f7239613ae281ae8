"""What the store precomputes at ingest equals what Dovecot answers after an IMAP APPEND.

Closes the loop of the foundation issue: the same 300+ varied messages go into Dovecot by
APPEND and into our store by a batch ingest (worker processes) and one by one (inline); the
ENVELOPE, BODYSTRUCTURE and BODY that FETCH returns from Dovecot must equal, byte for byte,
the values our store will serve.
"""

from __future__ import annotations

import imaplib

import pytest

from gateway.store import MailStore, NewMessage
from tests.support.corpus import crlf, generate_corpus, malformed_corpus
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER
from tests.support.imap_raw import RawImapClient, parse_fetch

pytestmark = pytest.mark.system

FOLDER = "appended"


def _append_all(server: DovecotServer, messages: list[bytes]) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.create(FOLDER)
        for raw in messages:
            status, _ = client.append(FOLDER, "", None, raw)
            assert status == "OK"
    finally:
        client.logout()


def _fetch_all(server: DovecotServer) -> dict[int, dict[str, bytes]]:
    with RawImapClient("127.0.0.1", server.imap_port) as client:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.command(b"EXAMINE " + FOLDER.encode())
        result = client.command(b"FETCH 1:* (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)")
    return dict(
        parse_fetch(response) for response in result.untagged if b" FETCH (" in response[:30]
    )


def test_store_ingest_matches_dovecot_after_append(
    dovecot: DovecotServer, sqlite_store: MailStore
) -> None:
    messages = list(generate_corpus(300, seed=11))
    messages += [crlf(raw) for _, raw in malformed_corpus() if raw]
    # imaplib turns every bare CR or LF (binary parts have some) into CRLF on APPEND, as
    # RFC 3501 literals of text expect; the store gets exactly the bytes Dovecot got.
    messages = [imaplib.MapCRLF.sub(b"\r\n", raw) for raw in messages]
    _append_all(dovecot, messages)
    fetched = _fetch_all(dovecot)
    assert len(fetched) == len(messages)

    user = sqlite_store.create_user(name="alice", password="pw")
    inbox = sqlite_store.get_mailbox(user_id=user.id, name="INBOX").id
    half = len(messages) // 2
    results = sqlite_store.append_messages(items=[NewMessage(inbox, m) for m in messages[:half]])
    results += [sqlite_store.append_message(mailbox_id=inbox, content=m) for m in messages[half:]]
    stored = sqlite_store.get_messages(message_ids=[r.message_id for r in results])

    mismatches = []
    for number, (raw, result) in enumerate(zip(messages, results, strict=True), 1):
        theirs, ours = fetched[number], stored[result.message_id]
        assert int(theirs["RFC822.SIZE"]) == len(raw) == ours.size
        for item, value in (
            ("ENVELOPE", ours.envelope),
            ("BODYSTRUCTURE", ours.bodystructure),
            ("BODY", ours.body),
        ):
            if theirs[item] != value:
                mismatches.append(
                    f"#{number} {item}\n dovecot {theirs[item]!r}\n ours    {value!r}"
                )
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:10])
