"""Our FETCH body sections must equal Dovecot 2.3's responses, byte for byte.

The same messages go into a private Dovecot (as Maildir files) and into our store; for every
message one FETCH asks for the whole message, its header and text, HEADER.FIELDS[.NOT], every
part's body and MIME header (HEADER/TEXT too for message/rfc822 parts), partials, and
sections that do not exist. Our rendered `* n FETCH (...)` response must equal Dovecot's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from gateway.imap.fetch_render import render_fetch
from gateway.imap.protocol.fetch_items import FetchAttribute, Section
from gateway.mime import analyze_message
from gateway.store import MailStore, open_store
from gateway.store.views import EntryInfo
from tests.support.corpus import crlf, generate_corpus, large_attachment, malformed_corpus
from tests.support.dovecot import DovecotServer
from tests.support.fixtures_dovecot import DOVECOT_PASSWORD, DOVECOT_USER
from tests.support.fixtures_store import make_settings
from tests.support.imap_raw import RawImapClient, parse_fetch

pytestmark = pytest.mark.system

# Header and structure edge cases beyond the shared corpora (all CRLF: see the bare-LF test).
EDGE_CASES: list[tuple[str, bytes]] = [
    ("header_without_final_newline", b"From: a@b\r\nSubject: no newline"),
    ("header_line_without_colon", b"From: a@b\r\nnot a field\r\nSubject: s\r\n\r\nbody\r\n"),
    ("space_before_colon", b"Subject : spaced\r\nFrom:a@b\r\nX-Empty:\r\n\r\nbody\r\n"),
    (
        "folded_fields",
        b"Subject: one\r\n\ttwo\r\n three\r\nReceived: from x\r\n by y\r\n"
        b"From: a@b\r\n (comment)\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n",
    ),
    ("leading_whitespace_line", b" leading\r\nSubject: s\r\n\r\nbody\r\n"),
    ("duplicate_fields", b"subject: one\r\nSUBJECT: two\r\nFrom: a@b\r\nsUbJeCt: 3\r\n\r\nx\r\n"),
    ("empty_header", b"\r\nbody only\r\n"),
    ("bare_cr_in_header", b"Subject: a\rb\r\nFrom: a@b\r\n\r\nx\r\n"),
    ("eight_bit_field_name", "Sübject: x\r\nFrom: a@b\r\n\r\nx\r\n".encode()),
    (
        "root_message_rfc822",
        b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nFrom: x@y\r\n\r\ninner body\r\n",
    ),
    (
        "root_rfc822_multipart_inside",
        b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        b"--z\r\n\r\none\r\n--z\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--z--\r\n",
    ),
    (
        "empty_bodies_before_boundaries",
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: text/plain\r\n\r\n--o\r\n\r\n--o\r\n\r\n\r\n--o\r\n"
        b"X-A: 1\r\n\r\n\r\n--o\r\nX-C: 3\r\n\r\n--o--",
    ),
    (
        "rfc822_empty_body_before_boundary",
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\nFrom: a@b\r\n\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: y\r\n\r\n\r\n--o--\r\n",
    ),
    (
        "rfc822_nested_twice",
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: deepest\r\n\r\ndeep body\r\n"
        b"--o--\r\n",
    ),
]

# A boundary line inside a part's header (or the header of a message/rfc822 part's embedded
# message) ends that header and the part, as in Dovecot (analyser fixed; more cases with
# Dovecot's recorded answers in tests/unit/test_mime_boundary_in_header.py).
ANALYZER_BOUNDARY_IN_HEADER: list[tuple[str, bytes]] = [
    (
        "empty_rfc822_part",
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\n--o--\r\n",
    ),
    (
        "header_line_right_before_boundary",
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: text/plain\r\n--o\r\n\r\nsecond\r\n--o--\r\n",
    ),
    (
        "rfc822_part_with_header_only",
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: headers only\r\n--o--\r\n",
    ),
]


def _messages() -> list[tuple[str, bytes]]:
    messages = [
        (f"corpus-{index}", raw)
        for index, raw in enumerate(generate_corpus(160, seed=5, max_size=120_000))
    ]
    messages += [(name, crlf(raw)) for name, raw in malformed_corpus() if raw]
    messages += EDGE_CASES
    messages.append(("large_attachment", large_attachment(2_000_000)))
    return messages


def _peek(section: Section, partial: tuple[int, int] | None = None) -> FetchAttribute:
    return FetchAttribute("BODY[]", section=section, partial=partial, peek=True)


def _attributes(raw: bytes) -> list[FetchAttribute]:
    """Everything we compare for one message, in the order we ask for it."""
    size = len(raw)
    items = [
        FetchAttribute("RFC822.SIZE"),
        FetchAttribute("INTERNALDATE"),
        FetchAttribute("RFC822.HEADER"),
        _peek(Section()),
        _peek(Section(text="HEADER")),
        _peek(Section(text="TEXT")),
        _peek(
            Section(text="HEADER.FIELDS", header_fields=("From", "Subject", "Date", "Message-ID"))
        ),
        _peek(Section(text="HEADER.FIELDS.NOT", header_fields=("Received",))),
        _peek(Section(text="HEADER.FIELDS", header_fields=("X-Not-There",))),
        _peek(Section(text="HEADER.FIELDS.NOT", header_fields=("subject", "FROM", "x-empty"))),
        _peek(Section(), (0, 10)),
        _peek(Section(), (max(size - 5, 0), 100)),
        _peek(Section(), (size, 1)),
        _peek(Section(), (size + 10, 5)),
        _peek(Section(text="TEXT"), (3, 7)),
        _peek(Section(text="HEADER.FIELDS", header_fields=("Subject",)), (2, 9)),
        _peek(Section(part=(1,)), (2, 3)),
        _peek(Section(part=(99,))),
        _peek(Section(part=(1, 99))),
        _peek(Section(part=(1, 1, 1, 1))),
        _peek(Section(part=(99,), text="MIME")),
        _peek(Section(part=(1,), text="HEADER")),
        _peek(Section(part=(1,), text="TEXT")),
    ]
    for span in analyze_message(raw).parts:
        if not span.section:
            continue
        numbers = tuple(int(number) for number in span.section.split("."))
        items.append(_peek(Section(part=numbers)))
        items.append(_peek(Section(part=numbers, text="MIME")))
        if span.is_message:
            items.append(_peek(Section(part=numbers, text="HEADER")))
            items.append(_peek(Section(part=numbers, text="TEXT")))
            items.append(
                _peek(Section(part=numbers, text="HEADER.FIELDS", header_fields=("Subject",)))
            )
            items.append(
                _peek(Section(part=numbers, text="HEADER.FIELDS.NOT", header_fields=("From",)))
            )
        elif not span.is_multipart:
            # Dovecot takes one more ".1" after a leaf, but not two
            items.append(_peek(Section(part=(*numbers, 1))))
            items.append(_peek(Section(part=(*numbers, 1, 1))))
    return items


def _command_item(attribute: FetchAttribute) -> bytes:
    if attribute.section is None:
        return attribute.name.encode()
    name = b"BODY.PEEK[" + attribute.section.spec() + b"]"
    if attribute.partial is not None:
        name += b"<%d.%d>" % attribute.partial
    return name


def _dovecot_fetch(client: RawImapClient, number: int, items: list[FetchAttribute]) -> bytes:
    request = b"FETCH %d (" % number + b" ".join(_command_item(item) for item in items) + b")"
    result = client.command(request)
    responses = [r for r in result.untagged if r.startswith(b"* %d FETCH" % number)]
    assert len(responses) == 1, result.untagged
    return responses[0]


def _our_fetch(
    store: MailStore, number: int, entry: EntryInfo, items: list[FetchAttribute]
) -> bytes:
    return b"".join(render_fetch(store, targets=[(number, entry)], attributes=items))


def _describe(number: int, name: str, theirs: bytes, ours: bytes) -> str:
    _, their_items = parse_fetch(theirs)
    _, our_items = parse_fetch(ours)
    lines = [f"#{number} {name}:"]
    for key in dict.fromkeys([*their_items, *our_items]):
        if their_items.get(key) != our_items.get(key):
            lines.append(f"  {key}\n    dovecot {their_items.get(key)!r:.300}")
            lines.append(f"    ours    {our_items.get(key)!r:.300}")
    if len(lines) == 1:
        lines.append(f"  order/framing differs:\n    {theirs[:300]!r}\n    {ours[:300]!r}")
    return "\n".join(lines)


def _internal_date(response: bytes) -> datetime:
    value = parse_fetch(response)[1]["INTERNALDATE"].strip(b'"').decode()
    return datetime.strptime(value, "%d-%b-%Y %H:%M:%S %z")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailStore]:
    data_dir: Path = tmp_path_factory.mktemp("fetch-store") / "data"
    mail_store = open_store(make_settings(data_dir))
    try:
        yield mail_store
    finally:
        mail_store.close()


def _compare_folder(
    dovecot: DovecotServer, store: MailStore, folder: str, messages: list[tuple[str, bytes]]
) -> list[str]:
    dovecot.load_maildir(DOVECOT_USER, folder, (raw for _, raw in messages))
    user = store.create_user(name=folder.lower(), password="pw")
    mailbox_id = store.get_mailbox(user_id=user.id, name="INBOX").id
    problems: list[str] = []
    with RawImapClient("127.0.0.1", dovecot.imap_port) as client:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.command(b'EXAMINE "' + folder.encode() + b'"')
        for number, (name, raw) in enumerate(messages, 1):
            items = _attributes(raw)
            theirs = _dovecot_fetch(client, number, items)
            store.append_message(
                mailbox_id=mailbox_id, content=raw, internal_date=_internal_date(theirs)
            )
            entry = store.list_entries(mailbox_id=mailbox_id)[-1]
            ours = _our_fetch(store, number, entry, items)
            if ours != theirs:
                problems.append(_describe(number, name, theirs, ours))
    return problems


def test_body_sections_match_dovecot(dovecot_module: DovecotServer, store: MailStore) -> None:
    problems = _compare_folder(dovecot_module, store, "sections", _messages())
    assert not problems, f"{len(problems)} messages differ:\n" + "\n".join(problems[:10])


# Known FETCH gap (gateway/imap/body_sections.py, reported): these differ only in
# BODY[1.HEADER.FIELDS[.NOT]]. Dovecot's header filter reads the raw message from the embedded
# header on to a blank line or the end, past the boundary that cut the header (and into the
# next part's header); we filter only the header's own bytes. Strict xfail: fixing it flips them.
_HEADER_FIELDS_READ_PAST_CUT = {"empty_rfc822_part", "rfc822_part_with_header_only"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            marks=pytest.mark.xfail(
                strict=True, reason="HEADER.FIELDS of a cut embedded header stops at the cut"
            ),
        )
        if case[0] in _HEADER_FIELDS_READ_PAST_CUT
        else case
        for case in ANALYZER_BOUNDARY_IN_HEADER
    ],
    ids=lambda case: case[0],
)
def test_boundary_inside_header_matches_dovecot(
    dovecot_module: DovecotServer, store: MailStore, case: tuple[str, bytes]
) -> None:
    folder = case[0].replace("_", "")
    problems = _compare_folder(dovecot_module, store, folder, [case])
    assert not problems, "\n".join(problems)


def test_bare_lf_messages_are_served_as_stored(
    dovecot_module: DovecotServer, store: MailStore
) -> None:
    """Documented difference: Dovecot serves bare-LF mail with CRLF; we serve stored bytes.

    HEADER.FIELDS is built, not copied, and uses CRLF on both sides.
    """
    messages = [
        (name, raw) for name, raw in malformed_corpus() if b"\n" in raw.replace(b"\r\n", b"")
    ]
    messages.append(("bare_lf_multipart", NESTED_LF))
    dovecot_module.load_maildir(DOVECOT_USER, "barelf", (raw for _, raw in messages))
    user = store.create_user(name="barelf", password="pw")
    mailbox_id = store.get_mailbox(user_id=user.id, name="INBOX").id
    fields = Section(text="HEADER.FIELDS", header_fields=("Subject", "From"))
    items = [_peek(Section()), _peek(fields), _peek(Section(part=(1,)))]
    with RawImapClient("127.0.0.1", dovecot_module.imap_port) as client:
        client.login(DOVECOT_USER, DOVECOT_PASSWORD)
        client.command(b"EXAMINE barelf")
        for number, (name, raw) in enumerate(messages, 1):
            _, theirs = parse_fetch(_dovecot_fetch(client, number, items))
            store.append_message(mailbox_id=mailbox_id, content=raw)
            entry = store.list_entries(mailbox_id=mailbox_id)[-1]
            _, ours = parse_fetch(_our_fetch(store, number, entry, items))
            served = raw.replace(b"\0", b"\x80")  # RFC 3501 §4.3: no NUL in a literal
            assert theirs["BODY[]"] == b"{%d}\r\n" % len(crlf(raw)) + crlf(served), name
            assert ours["BODY[]"] == b"{%d}\r\n" % len(raw) + served, name
            assert (
                ours["BODY[HEADER.FIELDS (SUBJECT FROM)]"]
                == theirs["BODY[HEADER.FIELDS (SUBJECT FROM)]"]
            ), name
            # the same part, line ends aside
            assert (
                crlf(ours["BODY[1]"].partition(b"\r\n")[2])
                == theirs["BODY[1]"].partition(b"\r\n")[2]
            ), name


NESTED_LF = (
    b"From: a@b\nSubject: lf\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
    b"--o\nContent-Type: text/plain\n\nhello\n--o\nContent-Type: message/rfc822\n\n"
    b"Subject: inner\n\ninner body\n--o--\n"
)
