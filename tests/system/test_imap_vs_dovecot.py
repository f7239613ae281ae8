"""The same mailbox in our server and in Dovecot: the same commands give the same answers.

Both servers get the same messages by APPEND in the same order (so UIDs agree) and the same
flag changes; then a table of FETCH and SEARCH commands runs against both with one raw
client, and every untagged response must be byte-identical. Only what legitimately differs
is normalised: \\Recent (session-dependent) and INTERNALDATE (the APPEND time).
"""

from __future__ import annotations

import imaplib
import re

import pytest

from tests.support.corpus import crlf, generate_corpus, malformed_corpus
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER
from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import RawImapClient

pytestmark = pytest.mark.system

FOLDER = "compared"
FLAG_CHANGES = [
    b"STORE 1:20 +FLAGS.SILENT (\\Seen)",
    b"STORE 5:9 +FLAGS.SILENT (\\Flagged $Work)",
    b"STORE 30:40 +FLAGS.SILENT (\\Answered \\Draft)",
    b"STORE 15:35 -FLAGS.SILENT (\\Seen)",
    b"UID STORE 50:60 +FLAGS.SILENT ($Junk)",
]
COMMANDS = [
    b"FETCH 1:* (UID RFC822.SIZE FLAGS ENVELOPE BODYSTRUCTURE BODY)",
    b"UID FETCH 1:* (FLAGS)",
    b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date Message-ID)])",
    b"FETCH 1:* (BODY.PEEK[HEADER.FIELDS.NOT (Received Subject)])",
    b"FETCH 1:40 (BODY.PEEK[])",
    b"FETCH 1:* (BODY.PEEK[1] BODY.PEEK[1.MIME])",
    b"FETCH 1:* (BODY.PEEK[TEXT]<0.200> BODY.PEEK[HEADER]<10.50>)",
    b"FETCH 1:* (BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[1.2.MIME])",
    b"UID FETCH 7,3,100:* (UID RFC822.SIZE)",
    b"FETCH 2:4 (RFC822.HEADER RFC822.TEXT)",
    b"SEARCH ALL",
    b"SEARCH SEEN",
    b"SEARCH UNSEEN FLAGGED",
    b"SEARCH OR ANSWERED KEYWORD $Junk",
    b"SEARCH NOT DRAFT DELETED",
    b"SEARCH KEYWORD $Work",
    b"SEARCH UNKEYWORD $Work 1:30",
    b"UID SEARCH UID 10:20,40:*",
    b"SEARCH LARGER 20000",
    b"SEARCH SMALLER 3000",
    b"SEARCH SUBJECT re",
    b"SEARCH FROM example",
    b"SEARCH TO a",
    b"SEARCH CC e",
    b"SEARCH HEADER Content-Type multipart",
    b'SEARCH HEADER X-Mailer ""',
    b"SEARCH BODY the",
    b"SEARCH TEXT invoice",
    b"SEARCH SENTSINCE 1-Jan-2015",
    b"SEARCH SENTBEFORE 1-Jan-2012",
    b"SEARCH SENTON 3-Mar-2014",
    b'SEARCH CHARSET UTF-8 SUBJECT "\xe6\x97\xa5"',
    b"SEARCH OR (SEEN FLAGGED) (LARGER 50000 NOT SUBJECT a)",
    b"SEARCH RETURN (MIN MAX COUNT) SEEN",
    b"UID SEARCH RETURN (ALL) OR SEEN DRAFT",
    b"SEARCH RETURN () UNSEEN",
]
_RECENT = re.compile(rb"\\Recent ?|(?<=.) \\Recent(?=\))")


def _append(port: int, user: str, password: str, messages: list[bytes], create: bool) -> None:
    client = imaplib.IMAP4("127.0.0.1", port)
    try:
        client.login(user, password)
        if create:
            client.create(FOLDER)
        for raw in messages:
            status, data = client.append(FOLDER, "", None, raw)
            assert status == "OK", data
    finally:
        client.logout()


def _answers(port: int, user: str, password: str) -> list[tuple[bytes, list[bytes]]]:
    with RawImapClient("127.0.0.1", port) as client:
        client.login(user, password)
        client.command(b"SELECT " + FOLDER.encode())
        for change in FLAG_CHANGES:
            client.command(change)
        results = []
        for command in COMMANDS:
            result = client.command(command)
            results.append((command, [_RECENT.sub(b"", line) for line in result.untagged]))
        return results


def test_fetch_and_search_answers_equal_dovecots(
    dovecot: DovecotServer, gateway: RunningGateway
) -> None:
    messages = list(generate_corpus(150, seed=23))
    messages += [crlf(raw) for _, raw in malformed_corpus() if raw]
    messages = [imaplib.MapCRLF.sub(b"\r\n", raw) for raw in messages]
    gateway.store.create_mailbox(user_id=1, name=FOLDER)
    _append(dovecot.imap_port, DOVECOT_USER, DOVECOT_PASSWORD, messages, create=True)
    _append(gateway.port, USER, PASSWORD, messages, create=False)
    theirs = _answers(dovecot.imap_port, DOVECOT_USER, DOVECOT_PASSWORD)
    ours = _answers(gateway.port, USER, PASSWORD)
    differences = []
    for (command, dovecot_lines), (_, our_lines) in zip(theirs, ours, strict=True):
        if dovecot_lines != our_lines:
            pairs = [(d, o) for d, o in zip(dovecot_lines, our_lines, strict=False) if d != o]
            first = pairs[0] if pairs else (dovecot_lines[-1:], our_lines[-1:])
            if command.startswith(b"SEARCH") and pairs:
                theirs_set, ours_set = set(first[0].split()), set(first[1].split())
                first = (sorted(theirs_set - ours_set), sorted(ours_set - theirs_set))
            differences.append(
                f"{command.decode(errors='replace')}: {len(dovecot_lines)} vs {len(our_lines)}"
                f" lines\n  dovecot {first[0]!r:.400}\n  ours    {first[1]!r:.400}"
            )
    assert not differences, f"{len(differences)} commands differ:\n" + "\n".join(differences)
