"""Command parser: FETCH, STORE, COPY and MOVE (RFC 3501 §6.4, RFC 7162, RFC 6851)."""

from __future__ import annotations

import pytest

from gateway.imap.protocol import CommandError
from gateway.imap.protocol.commands import Copy, Fetch, Move, Noop, Store
from gateway.imap.protocol.fetch_items import FetchAttribute, Section
from gateway.imap.protocol.sequence import SequenceSet
from tests.imap.parser_support import commands, parse

UID = FetchAttribute("UID")
FLAGS = FetchAttribute("FLAGS")
SIZE = FetchAttribute("RFC822.SIZE")
INTERNALDATE = FetchAttribute("INTERNALDATE")
ENVELOPE = FetchAttribute("ENVELOPE")
BODYSTRUCTURE = FetchAttribute("BODYSTRUCTURE")
MODSEQ = FetchAttribute("MODSEQ")
ALL_TO_STAR = SequenceSet(((1, None),))


def seq(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


def body(
    *part: int,
    text: str | None = None,
    fields: tuple[str, ...] = (),
    peek: bool = False,
    partial: tuple[int, int] | None = None,
) -> FetchAttribute:
    section = Section(part=part, text=text, header_fields=fields)  # type: ignore[arg-type]
    return FetchAttribute("BODY[]", section=section, partial=partial, peek=peek)


def field_names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


THUNDERBIRD_FIELDS = field_names(
    "From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups"
    " In-Reply-To Content-Type Reply-To"
)

CLIENT_FETCHES = [
    # Thunderbird header download
    (
        b"A3 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc"
        b" Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To"
        b" Content-Type Reply-To)])",
        Fetch(
            "A3",
            uid=True,
            sequence_set=ALL_TO_STAR,
            attributes=(
                UID,
                SIZE,
                FLAGS,
                body(text="HEADER.FIELDS", fields=THUNDERBIRD_FIELDS, peek=True),
            ),
        ),
    ),
    # Thunderbird CONDSTORE flag resync
    (
        b"a UID fetch 1:* (FLAGS) (CHANGEDSINCE 0)",
        Fetch("a", uid=True, sequence_set=ALL_TO_STAR, attributes=(FLAGS,), changed_since=0),
    ),
    # QRESYNC client (RFC 7162 §3.2.6 example)
    (
        b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
        Fetch(
            "s100",
            uid=True,
            sequence_set=seq((300, 500)),
            attributes=(FLAGS,),
            changed_since=12345,
            vanished=True,
        ),
    ),
    (
        b"s101 UID FETCH 1:* FLAGS (VANISHED CHANGEDSINCE 9223372036854775807)",
        Fetch(
            "s101",
            uid=True,
            sequence_set=ALL_TO_STAR,
            attributes=(FLAGS,),
            changed_since=2**63 - 1,
            vanished=True,
        ),
    ),
    # Apple Mail
    (
        b"9 UID FETCH 4827:4830 (INTERNALDATE UID RFC822.SIZE FLAGS MODSEQ"
        b" BODY.PEEK[HEADER.FIELDS (date subject from to cc message-id in-reply-to"
        b" references content-type x-priority x-uniform-type-identifier"
        b" x-universally-unique-identifier list-id list-unsubscribe bimi-indicator"
        b" bimi-location x-bimi-indicator-hash authentication-results dkim-signature)])",
        Fetch(
            "9",
            uid=True,
            sequence_set=seq((4827, 4830)),
            attributes=(
                INTERNALDATE,
                UID,
                SIZE,
                FLAGS,
                MODSEQ,
                body(
                    text="HEADER.FIELDS",
                    fields=field_names(
                        "date subject from to cc message-id in-reply-to references"
                        " content-type x-priority x-uniform-type-identifier"
                        " x-universally-unique-identifier list-id list-unsubscribe"
                        " bimi-indicator bimi-location x-bimi-indicator-hash"
                        " authentication-results dkim-signature"
                    ),
                    peek=True,
                ),
            ),
        ),
    ),
    (
        b"10 UID FETCH 4827 (BODYSTRUCTURE BODY.PEEK[1.MIME] BODY.PEEK[2]<0.2048>)",
        Fetch(
            "10",
            uid=True,
            sequence_set=seq((4827, 4827)),
            attributes=(
                BODYSTRUCTURE,
                body(1, text="MIME", peek=True),
                body(2, peek=True, partial=(0, 2048)),
            ),
        ),
    ),
    # Outlook
    (
        b"11 UID FETCH 17 (UID RFC822.SIZE BODY.PEEK[])",
        Fetch("11", uid=True, sequence_set=seq((17, 17)), attributes=(UID, SIZE, body(peek=True))),
    ),
    (
        b"12 UID FETCH 17 (UID RFC822.PEEK)",
        Fetch(
            "12",
            uid=True,
            sequence_set=seq((17, 17)),
            attributes=(UID, FetchAttribute("RFC822", peek=True)),
        ),
    ),
    # mutt
    (
        b"a0005 FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS"
        b" (DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE"
        b" CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL)])",
        Fetch(
            "a0005",
            uid=False,
            sequence_set=seq((1, 3)),
            attributes=(
                UID,
                FLAGS,
                INTERNALDATE,
                SIZE,
                body(
                    text="HEADER.FIELDS",
                    fields=field_names(
                        "DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE"
                        " CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST"
                        " X-LABEL"
                    ),
                    peek=True,
                ),
            ),
        ),
    ),
    (
        b"a0006 UID FETCH 42 BODY.PEEK[]",
        Fetch("a0006", uid=True, sequence_set=seq((42, 42)), attributes=(body(peek=True),)),
    ),
    # mbsync
    (
        b"7 UID FETCH 1:1000000000 (UID FLAGS)",
        Fetch("7", uid=True, sequence_set=seq((1, 1000000000)), attributes=(UID, FLAGS)),
    ),
    (
        b'8 UID FETCH 5 (BODY.PEEK[HEADER.FIELDS ("X-TUID")])',
        Fetch(
            "8",
            uid=True,
            sequence_set=seq((5, 5)),
            attributes=(body(text="HEADER.FIELDS", fields=("X-TUID",), peek=True),),
        ),
    ),
    # offlineimap / imaplib
    (
        b"ABCD5 UID FETCH 23 (BODY.PEEK[] FLAGS)",
        Fetch("ABCD5", uid=True, sequence_set=seq((23, 23)), attributes=(body(peek=True), FLAGS)),
    ),
    (
        b"ABCD6 FETCH 1 (RFC822)",
        Fetch("ABCD6", uid=False, sequence_set=seq((1, 1)), attributes=(FetchAttribute("RFC822"),)),
    ),
    (
        b"ABCD7 fetch 2 rfc822.header",
        Fetch(
            "ABCD7",
            uid=False,
            sequence_set=seq((2, 2)),
            attributes=(FetchAttribute("RFC822.HEADER", peek=True),),
        ),
    ),
    (
        b"ABCD8 FETCH 2 (RFC822.TEXT body)",
        Fetch(
            "ABCD8",
            uid=False,
            sequence_set=seq((2, 2)),
            attributes=(FetchAttribute("RFC822.TEXT"), FetchAttribute("BODY")),
        ),
    ),
    # K-9
    (
        b"12 UID FETCH 100:110 (UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS.NOT"
        b" (Received DKIM-Signature)] FLAGS)",
        Fetch(
            "12",
            uid=True,
            sequence_set=seq((100, 110)),
            attributes=(
                UID,
                INTERNALDATE,
                SIZE,
                body(text="HEADER.FIELDS.NOT", fields=("Received", "DKIM-Signature"), peek=True),
                FLAGS,
            ),
        ),
    ),
    (
        b"13 UID FETCH 100 (UID BODY.PEEK[1.2.3.TEXT]<100.4096> BODY[1.HEADER] BODY[TEXT])",
        Fetch(
            "13",
            uid=True,
            sequence_set=seq((100, 100)),
            attributes=(
                UID,
                body(1, 2, 3, text="TEXT", peek=True, partial=(100, 4096)),
                body(1, text="HEADER"),
                body(text="TEXT"),
            ),
        ),
    ),
    # RFC 3501 examples and macros
    (
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
        Fetch(
            "A654",
            uid=False,
            sequence_set=seq((2, 4)),
            attributes=(FLAGS, body(text="HEADER.FIELDS", fields=("DATE", "FROM"))),
        ),
    ),
    (
        b"1 FETCH 1:* ALL",
        Fetch(
            "1",
            uid=False,
            sequence_set=ALL_TO_STAR,
            attributes=(FLAGS, INTERNALDATE, SIZE, ENVELOPE),
        ),
    ),
    (
        b"2 FETCH * fast",
        Fetch(
            "2",
            uid=False,
            sequence_set=seq((None, None)),
            attributes=(FLAGS, INTERNALDATE, SIZE),
        ),
    ),
    (
        b"3 UID FETCH 5,3:4 FULL (CHANGEDSINCE 7)",
        Fetch(
            "3",
            uid=True,
            sequence_set=seq((5, 5), (3, 4)),
            attributes=(FLAGS, INTERNALDATE, SIZE, ENVELOPE, FetchAttribute("BODY")),
            changed_since=7,
        ),
    ),
    (
        b"4 FETCH 1 (body[] BODY[]<0.1> ENVELOPE modseq)",
        Fetch(
            "4",
            uid=False,
            sequence_set=seq((1, 1)),
            attributes=(body(), body(partial=(0, 1)), ENVELOPE, MODSEQ),
        ),
    ),
    (
        b"5 FETCH 1 BODY[HEADER.FIELDS ({7}\r\nSubject)]",
        Fetch(
            "5",
            uid=False,
            sequence_set=seq((1, 1)),
            attributes=(body(text="HEADER.FIELDS", fields=("Subject",)),),
        ),
    ),
]


@pytest.mark.parametrize(("line", "expected"), CLIENT_FETCHES, ids=lambda v: repr(v)[:60])
def test_client_fetches(line: bytes, expected: Fetch) -> None:
    assert parse(line) == expected


FETCH_ERRORS = [
    (b"A1 FETCH", "missing argument"),
    (b"A1 FETCH 1", "missing argument"),
    (b"A1 FETCH 0 FLAGS", "sequence number out of range"),
    (b"A1 FETCH 1 FLAGS FLAGS", "expected '(' to open fetch modifiers"),
    (b"A1 FETCH 1 ()", "empty fetch items"),
    (b"A1 FETCH 1 (FLAGS", "expected ')' to close fetch items"),
    (b"A1 FETCH 1 (FLAGS ALL)", "unknown fetch item ALL"),
    (b"A1 FETCH 1 (BINARY[1])", "unknown fetch item BINARY["),
    (b"A1 FETCH 1 FROB", "unknown fetch item FROB"),
    (b"A1 FETCH 1 BODY[", "bad section"),
    (b"A1 FETCH 1 BODY[0]", "bad section part number"),
    (b"A1 FETCH 1 BODY[1.]", "bad section"),
    (b"A1 FETCH 1 BODY[MIME]", "MIME needs a section part"),
    (b"A1 FETCH 1 BODY[HEADERS]", "bad section"),
    (b"A1 FETCH 1 BODY[HEADER.FIELDS]", "expected space"),
    (b"A1 FETCH 1 BODY[HEADER.FIELDS ()]", "empty header list"),
    (b"A1 FETCH 1 BODY[]<0>", "expected '.' in partial"),
    (b"A1 FETCH 1 BODY[]<0.0>", "partial length out of range"),
    (b"A1 FETCH 1 BODY[]<1.2", "expected '>' to close partial"),
    (b"A1 FETCH 1 BODY[1." + b"1." * 40 + b"TEXT]", "section part nested too deeply"),
    (b"A1 FETCH 1 FLAGS (CHANGEDSINCE)", "expected space"),
    (b"A1 FETCH 1 FLAGS (CHANGEDSINCE -1)", "expected mod-sequence"),
    (b"A1 FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)", "mod-sequence out of range"),
    (
        b"A1 FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
        "unknown or repeated fetch modifier CHANGEDSINCE",
    ),
    (b"A1 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", "VANISHED needs UID FETCH with CHANGEDSINCE"),
    (b"A1 UID FETCH 1 FLAGS (VANISHED)", "VANISHED needs UID FETCH with CHANGEDSINCE"),
    (b"A1 FETCH 1:2: FLAGS", "expected space"),
    (b"A1 FETCH 1:2, FLAGS", "expected sequence number"),
    (b"A1 FETCH 1:4294967296 FLAGS", "sequence number out of range"),
]


@pytest.mark.parametrize(("line", "reason"), FETCH_ERRORS, ids=lambda v: repr(v)[:60])
def test_fetch_errors(line: bytes, reason: str) -> None:
    assert commands(line + b"\r\nZ NOOP\r\n") == [CommandError("A1", "BAD", reason), Noop("Z")]


def store(tag: str, mode: str, flags: tuple[str, ...], **options: object) -> Store:
    defaults: dict[str, object] = {"uid": False, "sequence_set": seq((1, 1)), "silent": False}
    return Store(tag, mode=mode, flags=flags, **(defaults | options))  # type: ignore[arg-type]


CLIENT_STORES = [
    (
        b"A003 STORE 2:4 +FLAGS (\\Deleted)",
        store("A003", "add", ("\\Deleted",), sequence_set=seq((2, 4))),
    ),
    (b"A1 STORE 1 FLAGS ()", store("A1", "replace", ())),
    (
        b"A2 UID STORE 1 -FLAGS.SILENT (\\Seen)",
        store("A2", "remove", ("\\Seen",), uid=True, silent=True),
    ),
    (
        b"A3 uid store 1 +flags.silent \\seen \\FLAGGED",
        store("A3", "add", ("\\Seen", "\\Flagged"), uid=True, silent=True),
    ),
    (b"A4 STORE 1 flags $Junk NonJunk", store("A4", "replace", ("$Junk", "NonJunk"))),
    (
        b"A5 STORE 1 +FLAGS (\\Answered $Forwarded \\X-Custom)",
        store("A5", "add", ("\\Answered", "$Forwarded", "\\X-Custom")),
    ),
    (
        b"d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAG.SILENT (\\Deleted)",
        CommandError("d105", "BAD", "expected FLAGS, +FLAGS or -FLAGS"),
    ),
    (
        b"d105 UID STORE 7,5,9 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)",
        store(
            "d105",
            "add",
            ("\\Deleted",),
            uid=True,
            silent=True,
            sequence_set=seq((7, 7), (5, 5), (9, 9)),
            unchanged_since=320162338,
        ),
    ),
    (
        b"A6 STORE 1 (UNCHANGEDSINCE 0) FLAGS (\\Seen)",
        store("A6", "replace", ("\\Seen",), unchanged_since=0),
    ),
]


@pytest.mark.parametrize(("line", "expected"), CLIENT_STORES, ids=lambda v: repr(v)[:60])
def test_client_stores(line: bytes, expected: object) -> None:
    assert parse(line) == expected


STORE_ERRORS = [
    (b"A1 STORE 1 FLAGS", "missing argument"),
    (b"A1 STORE 1 FLAGS ", "expected flag"),
    (b"A1 STORE 1 LABELS (x)", "expected FLAGS, +FLAGS or -FLAGS"),
    (b"A1 STORE 1 +-FLAGS (x)", "expected FLAGS, +FLAGS or -FLAGS"),
    (b"A1 STORE 1 FLAGS.SILENT.SILENT (x)", "expected FLAGS, +FLAGS or -FLAGS"),
    (b"A1 STORE 1 FLAGS (\\*)", "expected flag"),
    (b"A1 STORE 1 FLAGS (a b", "expected ')' to close flag list"),
    (b"A1 STORE 1 FLAGS (a))", "unexpected characters at end of command"),
    (b'A1 STORE 1 FLAGS ("quoted")', "expected flag"),
    (b"A1 STORE 1 (UNCHANGEDSINCE x) FLAGS (a)", "expected mod-sequence"),
    (b"A1 STORE 1 (FOO 1) FLAGS (a)", "unknown or repeated store modifier FOO"),
    (b"A1 STORE 1 () FLAGS (a)", "empty store modifiers"),
]


@pytest.mark.parametrize(("line", "reason"), STORE_ERRORS, ids=lambda v: repr(v)[:60])
def test_store_errors(line: bytes, reason: str) -> None:
    assert commands(line + b"\r\nZ NOOP\r\n") == [CommandError("A1", "BAD", reason), Noop("Z")]


def test_copy_and_move() -> None:
    assert parse(b"A003 COPY 2:4 MEETING") == Copy("A003", False, seq((2, 4)), "MEETING")
    assert parse(b'A4 UID COPY 1:3,7 "[Gmail]/All Mail"') == Copy(
        "A4", True, seq((1, 3), (7, 7)), "[Gmail]/All Mail"
    )
    assert parse(b"a UID MOVE 42:69 foo") == Move("a", True, seq((42, 69)), "foo")
    assert parse(b"b move 1 inbox") == Move("b", False, seq((1, 1)), "INBOX")
    assert parse(b'c UID MOVE 5 "Gel&APY-scht"') == Move("c", True, seq((5, 5)), "Gelöscht")
    assert parse(b"d UID COPY 5 {5}\r\nTrash") == Copy("d", True, seq((5, 5)), "Trash")
    assert parse(b"e COPY 5") == CommandError("e", "BAD", "missing argument")
    assert parse(b"f MOVE x Trash") == CommandError("f", "BAD", "expected sequence number")
    assert parse(b"g MOVE 1 Trash Junk") == CommandError(
        "g", "BAD", "unexpected characters at end of command"
    )
