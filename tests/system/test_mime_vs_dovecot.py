"""Our ENVELOPE / BODY / BODYSTRUCTURE must equal Dovecot 2.3's, byte for byte.

Messages are loaded into a private Dovecot as Maildir files and fetched with a raw client, so
the comparison sees the exact response bytes (quoted strings vs literals included).
"""

from __future__ import annotations

import pytest

from gateway.mime import analyze_message
from tests.support.corpus import crlf, generate_corpus, malformed_corpus
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER
from tests.support.imap_raw import RawImapClient, parse_fetch

pytestmark = pytest.mark.system

CORPUS_SIZE = 320
ITEMS = ("ENVELOPE", "BODYSTRUCTURE", "BODY")


def _fetch_all(server: DovecotServer, folder: str) -> dict[int, dict[str, bytes]]:
    with RawImapClient("127.0.0.1", server.imap_port) as client:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.command(b'EXAMINE "' + folder.encode() + b'"')
        result = client.command(b"FETCH 1:* (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)")
    fetched: dict[int, dict[str, bytes]] = {}
    for response in result.untagged:
        if b" FETCH (" in response[:30]:
            number, items = parse_fetch(response)
            fetched[number] = items
    return fetched


def _compare(messages: list[tuple[str, bytes]], fetched: dict[int, dict[str, bytes]]) -> list[str]:
    problems: list[str] = []
    for number, (name, raw) in enumerate(messages, 1):
        items = fetched.get(number)
        if items is None:
            problems.append(f"#{number} {name}: not returned by Dovecot")
            continue
        # Dovecot counts sizes as if every line ended in CRLF; the corpus is CRLF, so the
        # raw size must agree - otherwise the UID order was not what we loaded.
        assert int(items["RFC822.SIZE"]) == len(raw), f"#{number} {name}: order mismatch"
        analyzed = analyze_message(raw)
        ours = {
            "ENVELOPE": analyzed.envelope,
            "BODYSTRUCTURE": analyzed.bodystructure,
            "BODY": analyzed.body,
        }
        for item in ITEMS:
            if ours[item] != items[item]:
                problems.append(
                    f"#{number} {name} {item}:\n"
                    f"  dovecot: {items[item]!r}\n  ours:    {ours[item]!r}"
                )
    return problems


def test_generated_corpus_matches_dovecot(dovecot_module: DovecotServer) -> None:
    messages = [(f"corpus-{i}", raw) for i, raw in enumerate(generate_corpus(CORPUS_SIZE, seed=1))]
    dovecot_module.load_maildir(DOVECOT_USER, "corpus", (raw for _, raw in messages))
    fetched = _fetch_all(dovecot_module, "corpus")
    problems = _compare(messages, fetched)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def test_malformed_corpus_crlf_matches_dovecot(dovecot_module: DovecotServer) -> None:
    # The empty message cannot be stored as a Maildir mail worth comparing (Dovecot shows a
    # 0-octet text/plain, as do we, see the unit tests), so it is left out here.
    messages = [(name, crlf(raw)) for name, raw in malformed_corpus() if raw]
    dovecot_module.load_maildir(DOVECOT_USER, "malformed", (raw for _, raw in messages))
    fetched = _fetch_all(dovecot_module, "malformed")
    problems = _compare(messages, fetched)
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems[:20])


def test_bare_lf_sizes_are_raw_not_dovecot_virtual(dovecot_module: DovecotServer) -> None:
    """Documented difference: for bare-LF mail Dovecot reports CRLF ("virtual") sizes.

    Our sizes are of the raw bytes, which is what our IMAP server stores and serves; line
    counts and everything else agree.  Dovecot's size is raw size + number of bare LFs.
    """
    raw = b"From: a@b\nMIME-Version: 1.0\nContent-Type: text/plain\n\nline one\nline two\n"
    dovecot_module.load_maildir(DOVECOT_USER, "barelf", [raw])
    items = _fetch_all(dovecot_module, "barelf")[1]
    ours = analyze_message(raw)
    body = raw.split(b"\n\n", 1)[1]
    dovecot_size = len(body) + body.count(b"\n")
    assert items["BODY"] == ours.body.replace(b" %d " % len(body), b" %d " % dovecot_size)
    assert items["ENVELOPE"] == ours.envelope
