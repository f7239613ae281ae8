"""BODY[section]<partial> extraction: unit tests on bytes, and reads through the real store.

The expected values are Dovecot 2.3.19's answers (tests/system/test_fetch_vs_dovecot.py
checks the same rules against a live Dovecot over a large corpus).
"""

from __future__ import annotations

import pytest

from gateway.imap.body_sections import (
    MessageParts,
    apply_partial,
    fetch_section,
    filter_header_fields,
)
from gateway.imap.protocol.fetch_items import Section
from gateway.mime import analyze_message, parts_from_json
from gateway.store import MailStore
from tests.support.corpus import crlf, generate_corpus, large_attachment, malformed_corpus

NESTED = (
    b"From: a@b\r\nSubject: s\r\nX-Fold: one\r\n two\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=o\r\n\r\n"
    b"preamble\r\n--o\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: x@y\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=i\r\n\r\n"
    b"--i\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>h</b>\r\n--i--\r\n"
    b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: simple inner\r\n\r\nsimple body\r\n"
    b"--o--\r\nepilogue\r\n"
)
SINGLE = b"From: a@b\r\nSubject: single\r\nsubject: dup\r\n\r\nbody line\r\n"
INNER_HEADER = (
    b"From: x@y\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=i\r\n\r\n"
)
INNER_TEXT = b"--i\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>h</b>\r\n--i--\r\n"


class CountingReader:
    """read_range over bytes that records what was read."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.reads: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.reads.append((start, end))
        return self.raw[start:end]


def fetch(
    raw: bytes,
    part: tuple[int, ...] = (),
    text: str | None = None,
    fields: tuple[str, ...] = (),
    partial: tuple[int, int] | None = None,
) -> bytes:
    parts = MessageParts(analyze_message(raw).parts, len(raw))
    section = Section(part=part, text=text, header_fields=fields)  # type: ignore[arg-type]
    return fetch_section(parts, section, CountingReader(raw), partial)


# --- whole message, header, text -------------------------------------------------------------


def test_whole_message_header_and_text() -> None:
    header_end = NESTED.index(b"\r\n\r\n") + 4
    assert fetch(NESTED) == NESTED
    assert fetch(NESTED, text="HEADER") == NESTED[:header_end]
    assert fetch(NESTED, text="TEXT") == NESTED[header_end:]


def test_header_only_message_has_empty_text() -> None:
    raw = b"From: a@b\r\nSubject: header only\r\n"
    assert fetch(raw, text="HEADER") == raw
    assert fetch(raw, text="TEXT") == b""
    assert fetch(raw, (1,), "MIME") == raw
    assert fetch(raw, (1,)) == b""


def test_message_without_header() -> None:
    raw = b"this is not a header\r\njust text\r\n"
    assert fetch(raw, text="HEADER") == raw
    assert fetch(raw, text="TEXT") == b""
    assert fetch(raw, text="HEADER.FIELDS", fields=("Subject",)) == b"\r\n"
    assert fetch(raw, text="HEADER.FIELDS.NOT", fields=("Subject",)) == raw


# --- parts -----------------------------------------------------------------------------------


def test_parts_and_mime_headers() -> None:
    assert fetch(NESTED, (1,)) == b"hello"
    assert fetch(NESTED, (1,), "MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert fetch(NESTED, (2,), "MIME") == b"Content-Type: message/rfc822\r\n\r\n"
    assert fetch(NESTED, (2,)) == INNER_HEADER + INNER_TEXT
    assert fetch(NESTED, (2, 1)) == b"plain"
    assert fetch(NESTED, (2, 1), "MIME") == b"\r\n"
    assert fetch(NESTED, (2, 2)) == b"<b>h</b>"


def test_message_rfc822_header_and_text() -> None:
    assert fetch(NESTED, (2,), "HEADER") == INNER_HEADER
    assert fetch(NESTED, (2,), "TEXT") == INNER_TEXT
    assert fetch(NESTED, (2,), "HEADER.FIELDS", ("subject",)) == b"Subject: inner\r\n\r\n"
    # a non-multipart embedded message: 3.1 is its body, 3.1.MIME its header
    assert fetch(NESTED, (3,), "HEADER") == b"Subject: simple inner\r\n\r\n"
    assert fetch(NESTED, (3, 1)) == b"simple body"
    assert fetch(NESTED, (3, 1), "MIME") == b"Subject: simple inner\r\n\r\n"


def test_header_and_text_of_a_part_that_is_not_a_message_are_empty() -> None:
    assert fetch(NESTED, (1,), "HEADER") == b""
    assert fetch(NESTED, (1,), "TEXT") == b""
    assert fetch(NESTED, (2, 1), "HEADER") == b""
    assert fetch(NESTED, (3, 1), "HEADER.FIELDS", ("Subject",)) == b""


@pytest.mark.parametrize(
    ("raw", "part"),
    [
        (NESTED, (9,)),
        (NESTED, (2, 9)),
        (NESTED, (1, 1, 1)),
        (NESTED, (3, 1, 1)),
        (SINGLE, (2,)),
        (SINGLE, (1, 1)),
    ],
)
def test_nonexistent_parts_are_empty(raw: bytes, part: tuple[int, ...]) -> None:
    assert fetch(raw, part) == b""
    assert fetch(raw, part, "MIME") == b""


def test_dovecot_takes_one_extra_1_after_a_leaf_in_a_multipart() -> None:
    assert fetch(NESTED, (1, 1)) == fetch(NESTED, (1,)) == b"hello"
    assert fetch(NESTED, (2, 1, 1)) == b"plain"


def test_single_part_message_part_1_is_the_body_and_its_mime_the_header() -> None:
    assert fetch(SINGLE, (1,)) == b"body line\r\n"
    assert fetch(SINGLE, (1,), "MIME") == SINGLE[: SINGLE.index(b"body")]


def test_root_message_rfc822() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: inner\r\nFrom: x@y\r\n\r\ninner body\r\n"
    )
    embedded = b"Subject: inner\r\nFrom: x@y\r\n\r\ninner body\r\n"
    assert fetch(raw, (1,)) == embedded
    assert fetch(raw, (1,), "HEADER") == b"Subject: inner\r\nFrom: x@y\r\n\r\n"
    assert fetch(raw, (1,), "TEXT") == b"inner body\r\n"
    assert fetch(raw, (1, 1)) == b"inner body\r\n"
    assert fetch(raw, (1, 1), "MIME") == b"Subject: inner\r\nFrom: x@y\r\n\r\n"


def test_header_with_empty_body_before_a_boundary_gives_its_line_end_to_the_boundary() -> None:
    raw = crlf(
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
        b"--o\nX-A: 1\n\n--o\nX-B: 2\n\n\n--o--\n"
    )
    assert fetch(raw, (1,), "MIME") == b"X-A: 1\r\n"
    assert fetch(raw, (1,)) == b""
    assert fetch(raw, (2,), "MIME") == b"X-B: 2\r\n\r\n"


def test_deeply_nested_parts() -> None:
    raw = dict(malformed_corpus())["deep_nesting"]
    deepest = (1,) * 30
    assert fetch(raw, deepest) == b""
    assert fetch(raw, deepest, "MIME") == b"innermost\r\n"


# --- HEADER.FIELDS ---------------------------------------------------------------------------


def test_header_fields_case_insensitive_with_folding_and_blank_line() -> None:
    result = fetch(NESTED, text="HEADER.FIELDS", fields=("x-FOLD", "subject", "nothing"))
    assert result == b"Subject: s\r\nX-Fold: one\r\n two\r\n\r\n"
    assert fetch(SINGLE, text="HEADER.FIELDS", fields=("SUBJECT",)) == (
        b"Subject: single\r\nsubject: dup\r\n\r\n"
    )
    assert fetch(SINGLE, text="HEADER.FIELDS", fields=("X-None",)) == b"\r\n"


def test_header_fields_not() -> None:
    result = fetch(NESTED, text="HEADER.FIELDS.NOT", fields=("X-Fold", "MIME-Version"))
    assert result == (
        b"From: a@b\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
    )


def test_header_fields_without_blank_line() -> None:
    header = b"From: a@b\r\nSubject: header only\r\n"
    assert filter_header_fields(header, ["subject"], exclude=False) == (
        b"Subject: header only\r\n\r\n"
    )
    # only HEADER.FIELDS adds the missing blank line, as Dovecot does
    assert filter_header_fields(header, ["subject"], exclude=True) == b"From: a@b\r\n"
    unterminated = b"From: a@b\r\nSubject: no newline"
    assert filter_header_fields(unterminated, ["Subject"], exclude=False) == (
        b"Subject: no newline\r\n\r\n"
    )
    assert filter_header_fields(unterminated, ["From"], exclude=True) == b"Subject: no newline"


@pytest.mark.parametrize(
    ("header", "names", "exclude", "expected"),
    [
        # space before the colon still names the field
        (b"Subject : x\r\nFrom: a\r\n\r\n", ["subject"], False, b"Subject : x\r\n\r\n"),
        # a line without a colon is a field named by the whole line
        (b"junk line\r\nFrom: a\r\n\r\n", ["From"], True, b"junk line\r\n\r\n"),
        # a first line starting with white space continues nothing: a field of its own
        (b" leading\r\nSubject: s\r\n\r\n", ["Subject"], True, b" leading\r\n\r\n"),
        # continuation lines follow their field in and out
        (b"A: 1\r\n\t2\r\nB: 3\r\n 4\r\n\r\n", ["b"], True, b"A: 1\r\n\t2\r\n\r\n"),
        # bare LF lines come out with CRLF (HEADER.FIELDS is built, not copied)
        (b"Subject: lf\nX: y\n z\n\n", ["x"], False, b"X: y\r\n z\r\n\r\n"),
        # only LF ends a line: a bare CR stays inside it
        (b"Subject: a\rb\r\n\r\n", ["subject"], False, b"Subject: a\rb\r\n\r\n"),
        # an empty header
        (b"\r\n", ["subject"], True, b"\r\n"),
        (b"", ["subject"], True, b""),
        (b"", ["subject"], False, b"\r\n"),
    ],
)
def test_header_field_edge_cases(
    header: bytes, names: list[str], exclude: bool, expected: bytes
) -> None:
    assert filter_header_fields(header, names, exclude=exclude) == expected


# --- partials, NULs, bare LF -------------------------------------------------------------------


def test_partials() -> None:
    assert fetch(SINGLE, partial=(5, 3)) == b" a@"
    assert fetch(SINGLE, partial=(0, 0)) == b""
    assert fetch(SINGLE, partial=(len(SINGLE) - 2, 100)) == b"\r\n"
    assert fetch(SINGLE, partial=(len(SINGLE), 10)) == b""
    assert fetch(SINGLE, partial=(len(SINGLE) + 500, 3)) == b""
    assert fetch(NESTED, (1,), partial=(1, 2)) == b"el"
    assert fetch(NESTED, (1,), partial=(4, 10)) == b"o"
    assert fetch(SINGLE, text="HEADER.FIELDS", fields=("Subject",), partial=(2, 5)) == b"bject"
    assert apply_partial(b"abc", None) == b"abc"
    assert apply_partial(b"abc", (5, 1)) == b""


def test_nul_octets_become_0x80() -> None:
    raw = b"Subject: nul\x00here\r\nFrom: a\x00b@c\r\n\r\nbody\x00\x00\r\n"
    assert fetch(raw) == raw.replace(b"\x00", b"\x80")
    assert fetch(raw, text="HEADER.FIELDS", fields=("subject",)) == b"Subject: nul\x80here\r\n\r\n"


def test_bare_lf_message_is_served_as_stored() -> None:
    raw = b"From: a@example.org\nSubject: bare LF\n\nline one\nline two\n"
    assert fetch(raw) == raw
    assert fetch(raw, text="TEXT") == b"line one\nline two\n"
    assert fetch(raw, (1,)) == b"line one\nline two\n"
    assert fetch(raw, partial=(3, 5)) == raw[3:8]


def test_a_part_of_a_large_message_reads_only_that_part() -> None:
    raw = large_attachment(3_000_000)
    parts = MessageParts(analyze_message(raw).parts, len(raw))
    reader = CountingReader(raw)
    assert fetch_section(parts, Section(part=(1,)), reader) == b"See attachment."
    assert sum(end - start for start, end in reader.reads) == len(b"See attachment.")
    reader.reads.clear()
    assert len(fetch_section(parts, Section(part=(2,)), reader, (1000, 64))) == 64
    assert sum(end - start for start, end in reader.reads) == 64


def test_every_part_of_a_corpus_is_within_the_message() -> None:
    for raw in generate_corpus(40, seed=9, max_size=50_000):
        analyzed = analyze_message(raw)
        parts = MessageParts(analyzed.parts, len(raw))
        for span in analyzed.parts[1:]:
            numbers = tuple(int(n) for n in span.section.split("."))
            body = fetch_section(parts, Section(part=numbers), CountingReader(raw))
            if not span.is_multipart:
                assert body == raw[span.body_start : span.end]
            mime = fetch_section(parts, Section(part=numbers, text="MIME"), CountingReader(raw))
            assert raw.find(mime) >= 0


# --- through the store -------------------------------------------------------------------------


def test_sections_read_from_the_store(store: MailStore) -> None:
    user = store.create_user(name="alice", password="pw")
    inbox = store.get_mailbox(user_id=user.id, name="INBOX").id
    result = store.append_message(mailbox_id=inbox, content=NESTED)
    data = store.fetch_message_data(
        message_ids=[result.message_id], columns={"blob_hash", "size", "parts_json"}
    )[result.message_id]
    assert data.blob_hash is not None and data.size == len(NESTED) and data.parts_json
    assert data.envelope is None  # not asked for, not loaded
    parts = MessageParts(parts_from_json(data.parts_json), data.size)
    with store.open_blob(blob_hash=data.blob_hash) as blob:

        def read_range(start: int, end: int) -> bytes:
            blob.seek(start)
            return blob.read(end - start)

        assert fetch_section(parts, Section(part=(2,), text="HEADER"), read_range) == INNER_HEADER
        assert fetch_section(parts, Section(), read_range, (0, 9)) == b"From: a@b"
