"""Whole-message FETCHes answered on the event loop (gateway/imap/loop_fetch.py).

The loop path must send exactly what the thread path sends, touch neither the database nor a
file that is not in memory, and give way to the thread path whenever it cannot be sure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.imap.loop_fetch import MAX_BYTES, MAX_MESSAGES, loop_fetchable
from gateway.imap.protocol.fetch_items import FetchAttribute, Section
from gateway.store import MailStore
from tests.support.gateway_server import PASSWORD, USER, RunningGateway
from tests.support.imap_raw import RawImapClient

MESSAGES = [
    b"From: a@example.org\r\nSubject: plain\r\n\r\nhello\r\n",
    # NUL bytes go out as 0x80 (as Dovecot sends them), bare LFs and 8-bit text as stored
    b"From: b@example.org\nSubject: odd\n\nnul \x00 here\nand \xe9t\xe9\n",
    b"Subject: no body",
    (
        b"From: c@example.org\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain\r\n\r\npart one\r\n--x--\r\n"
    ),
]
PEEK_ITEMS = [
    b"BODY.PEEK[]",
    b"(BODY.PEEK[]<0.20>)",
    b"(BODY.PEEK[]<5.100000>)",
    b"(BODY.PEEK[]<100000.5>)",
    b"(UID RFC822.SIZE FLAGS BODY.PEEK[])",
    b"(BODY.PEEK[] BODY.PEEK[]<3.4>)",
]


class StoreReads:
    """Counts the store calls a FETCH makes for message data."""

    def __init__(self, store: MailStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("fetch_message_data", "fetch_message_rows_by_uid", "open_blob"):
            monkeypatch.setattr(store, name, self._counting(name, getattr(store, name)))

    def _counting(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return function(*args, **kwargs)

        return counted


def _evict_blobs(store: MailStore) -> None:
    """Drop every blob's pages from the page cache, so that only the thread path can read them.

    DONTNEED skips pages that are dirty or under writeback, which a loaded machine (CI, with
    other tests writing) can still hold for a moment: sync first, and evict twice.
    """
    os.sync()
    for _ in range(2):
        for _, path in store.blobs.iter_digests():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@pytest.fixture
def client(gateway_any_backend: RunningGateway) -> Iterator[RawImapClient]:
    with RawImapClient(gateway_any_backend.host, gateway_any_backend.port) as raw:
        raw.login(USER, PASSWORD)
        for message in MESSAGES:
            raw.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        raw.command(b"SELECT INBOX")  # takes \\Recent (RFC 3501 §2.3.2) of the appended mail
        raw.command(b"SELECT INBOX")  # so the FLAGS compared below are exactly the stored ones
        yield raw


def _fetch_all(client: RawImapClient, items: list[bytes], numbers: str) -> list[list[bytes]]:
    return [client.command(b"FETCH " + numbers.encode() + b" " + item).untagged for item in items]


def test_loop_path_sends_what_the_thread_path_sends(
    gateway_any_backend: RunningGateway, client: RawImapClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = StoreReads(gateway_any_backend.store, monkeypatch)
    on_loop = _fetch_all(client, PEEK_ITEMS, "1:4")
    assert reads.calls == []  # neither the database nor a blocking read
    _evict_blobs(gateway_any_backend.store)
    threaded = _fetch_all(client, PEEK_ITEMS, "1:4")
    assert "fetch_message_data" in reads.calls and "open_blob" in reads.calls, (
        "the evicted blobs were still served from the page cache"
    )
    assert on_loop == threaded
    # and the bytes are the messages themselves
    whole = on_loop[0]
    for number, (response, message) in enumerate(zip(whole, MESSAGES, strict=True), 1):
        assert response == (
            b"* %d FETCH (BODY[] {%d}\r\n" % (number, len(message))
            + message.replace(b"\x00", b"\x80")
            + b")\r\n"
        )


def test_non_peek_fetch_on_the_loop_sets_seen_first(
    gateway_any_backend: RunningGateway, client: RawImapClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = StoreReads(gateway_any_backend.store, monkeypatch)
    (response,) = client.command(b"FETCH 1 RFC822").untagged
    assert response == (
        b"* 1 FETCH (RFC822 {%d}\r\n%s FLAGS (\\Seen))\r\n" % (len(MESSAGES[0]), MESSAGES[0])
    )
    (response,) = client.command(b"UID FETCH 2 BODY[]<0.4>").untagged
    assert response == b"* 2 FETCH (UID 2 BODY[]<0> {4}\r\nFrom FLAGS (\\Seen))\r\n"
    assert reads.calls == []
    (flags,) = client.command(b"FETCH 1:2 (FLAGS)").untagged[:1]
    assert flags == b"* 1 FETCH (FLAGS (\\Seen))\r\n"


def test_what_the_loop_does_not_answer_goes_to_the_thread_pool(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * (MAX_BYTES + 1) + b"\r\n"
    with RawImapClient(gateway.host, gateway.port) as client:
        client.login(USER, PASSWORD)
        for number in range(MAX_MESSAGES + 1):
            message = b"Subject: %d\r\n\r\nbody\r\n" % number
            client.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        client.command(b"APPEND INBOX {%d+}\r\n" % len(big) + big)
        client.command(b"SELECT INBOX")
        reads = StoreReads(gateway.store, monkeypatch)
        cases = [
            (b"FETCH 1:%d BODY.PEEK[]" % MAX_MESSAGES, False),
            (b"FETCH 1:%d BODY.PEEK[]" % (MAX_MESSAGES + 1), True),  # too many messages
            (b"FETCH %d BODY.PEEK[]" % (MAX_MESSAGES + 2), True),  # too many bytes
            (b"FETCH 1 BODY.PEEK[TEXT]", True),  # needs the part layout
            (b"FETCH 1 (INTERNALDATE BODY.PEEK[])", True),  # needs a column
        ]
        for command, threaded in cases:
            reads.calls.clear()
            responses = client.command(command).untagged
            assert responses and all(b"FETCH (" in response for response in responses)
            assert bool(reads.calls) == threaded, command
        (response,) = client.command(b"FETCH %d BODY.PEEK[]" % (MAX_MESSAGES + 2)).untagged
        assert response.endswith(big + b")\r\n")


def test_messages_added_after_select_are_read_on_the_loop(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        RawImapClient(gateway.host, gateway.port) as watcher,
        RawImapClient(gateway.host, gateway.port) as other,
    ):
        watcher.login(USER, PASSWORD)
        other.login(USER, PASSWORD)
        watcher.command(b"SELECT INBOX")
        message = b"Subject: late\r\n\r\narrived after SELECT\r\n"
        other.command(b"APPEND INBOX {%d+}\r\n" % len(message) + message)
        assert b"* 1 EXISTS\r\n" in watcher.command(b"NOOP").untagged
        reads = StoreReads(gateway.store, monkeypatch)
        (response,) = watcher.command(b"FETCH 1 BODY.PEEK[]").untagged
        assert response.endswith(message + b")\r\n")
        assert reads.calls == []
        # a STORE replaces the view's entries; the blob is still known
        watcher.command(b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        other.command(b"SELECT INBOX")
        other.command(b"STORE 1 +FLAGS.SILENT ($Later)")
        watcher.command(b"NOOP")
        reads.calls.clear()
        (response,) = watcher.command(b"FETCH 1 BODY.PEEK[]").untagged
        assert response.endswith(message + b")\r\n") and reads.calls == []


def _attribute(name: str, section: Section | None = None) -> FetchAttribute:
    return FetchAttribute(name, section=section)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ([_attribute("BODY[]", Section())], True),
        ([_attribute("RFC822"), _attribute("UID"), _attribute("RFC822.SIZE")], True),
        ([_attribute("RFC822.SIZE")], False),  # no whole message: the size column is cheaper
        ([_attribute("UID"), _attribute("FLAGS")], False),
        ([_attribute("BODY[]", Section(text="HEADER"))], False),
        ([_attribute("BODY[]", Section(part=(1,)))], False),
        ([_attribute("RFC822.HEADER")], False),
        ([_attribute("BODY[]", Section()), _attribute("ENVELOPE")], False),
    ],
)
def test_which_fetches_the_loop_can_answer(
    attributes: list[FetchAttribute], expected: bool
) -> None:
    assert loop_fetchable(attributes) is expected
