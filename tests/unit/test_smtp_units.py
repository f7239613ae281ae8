"""Sans-IO parts of the SMTP side: submission headers, enhanced codes, recipients, bounces,
backoff. Bytes in, objects out."""

from __future__ import annotations

import email
from datetime import UTC, datetime

import pytest

from gateway.mail_providers import relay_defaults
from gateway.smtp.bounce import build_bounce, status_of
from gateway.smtp.headers import prepare_submission, strip_bcc
from gateway.smtp.protocol import with_enhanced_code
from gateway.smtp.submission import plain_recipient
from gateway.smtp.worker import retry_delay

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_date_and_message_id_are_added_only_when_missing() -> None:
    bare = b"From: a@example.org\r\nTo: b@example.net\r\n\r\nbody\r\n"
    prepared = prepare_submission(bare, now=NOW, domain="example.org")
    message = email.message_from_bytes(prepared.content)
    assert message["Date"] == "Mon, 07 Dec 2026 12:00:00 +0000"
    assert message["Message-ID"] == prepared.message_id
    assert prepared.message_id.startswith("<") and prepared.message_id.endswith("@example.org>")
    assert prepared.content.endswith(b"\r\n\r\nbody\r\n")
    assert prepared.from_addresses == ("a@example.org",)
    complete = b"Date: x\r\nMessage-Id: <m@x>\r\nFrom: A <a@example.org>, b@example.org\r\n\r\nb"
    again = prepare_submission(complete, now=NOW, domain="example.org")
    assert again.content == complete and again.message_id == "<m@x>"
    assert again.from_addresses == ("a@example.org", "b@example.org")


def test_a_message_without_a_header_or_with_bare_newlines() -> None:
    prepared = prepare_submission(b"\r\njust a body\r\n", now=NOW, domain="x.org")
    assert prepared.from_addresses == ()
    unix = prepare_submission(b"From: a@x.org\n\nbody\n", now=NOW, domain="x.org")
    assert b"\nDate: " not in unix.content and unix.content.startswith(b"Date: ")
    assert unix.content.endswith(b"From: a@x.org\n\nbody\n")


def test_folded_and_encoded_from_fields() -> None:
    folded = b"From: =?utf-8?q?J=C3=B6rg?=\r\n <jorg@example.org>\r\n\r\n"
    assert prepare_submission(folded, now=NOW, domain="x").from_addresses == ("jorg@example.org",)
    utf8 = "From: Jörg <jörg@exämple.org>\r\n\r\n".encode()
    assert prepare_submission(utf8, now=NOW, domain="x").from_addresses == ("jörg@exämple.org",)


def test_bcc_is_stripped_with_its_folded_lines_and_nothing_else() -> None:
    content = (
        b"From: a@x.org\r\nBcc: one@x.org,\r\n two@x.org\r\nTo: b@y.org\r\n"
        b"BCC: three@x.org\r\n\r\nBcc: in the body stays\r\n"
    )
    assert strip_bcc(content) == (b"From: a@x.org\r\nTo: b@y.org\r\n\r\nBcc: in the body stays\r\n")
    plain = b"From: a@x.org\r\n\r\nhi\r\n"
    assert strip_bcc(plain) is plain


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"250 OK", b"250 2.0.0 OK"),
        (b"250 2.1.0 Sender OK", b"250 2.1.0 Sender OK"),
        (b"530 5.7.0 Authentication required", b"530 5.7.0 Authentication required"),
        (b"503 Error: need RCPT command", b"503 5.5.1 Error: need RCPT command"),
        (b"552 Error: Too much mail data", b"552 5.3.4 Error: Too much mail data"),
        (b"221 Bye", b"221 2.0.0 Bye"),
        (b"220 gateway.test ESMTP", b"220 gateway.test ESMTP"),
        (b"354 End data with <CR><LF>.<CR><LF>", b"354 End data with <CR><LF>.<CR><LF>"),
        (b"334 ", b"334 "),
        (b"250", b"250 2.0.0"),
    ],
)
def test_enhanced_codes_are_added_where_missing(line: bytes, expected: bytes) -> None:
    assert with_enhanced_code(line) == expected


@pytest.mark.parametrize(
    ("address", "plain"),
    [
        ("bob@example.net", True),
        ("bob.smith+tag@mail.example.net", True),
        ("jörg@exämple.org", True),
        ("bob%example.net@example.org", False),
        ("example.net!bob@example.org", False),
        ('"bob@example.net"@example.org', False),
        ("bob@[127.0.0.1]", False),
        ("bob@", False),
        ("@example.org", False),
        ("bob@exa mple.org", False),
        ("bob@-example.org", False),
        ("bob@example..org", False),
    ],
)
def test_plain_recipients(address: str, plain: bool) -> None:
    assert plain_recipient(address) is plain


def test_bounce_report_is_a_well_formed_multipart_report() -> None:
    report = build_bounce(
        reporting_host="gw.test",
        sender="a@example.org",
        failures={"b@y.org": "550 5.1.1 No such user", "c@y.org": "451 try later"},
        original=b"From: a@example.org\r\nSubject: hi\r\n\r\nsecret body\r\n",
        arrival=NOW,
        now=NOW,
        remote_host="smtp.example.org",
        expired=False,
    )
    message = email.message_from_bytes(report)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    _, status, headers = message.get_payload()
    first, second = status.get_payload()[1:]
    assert first["Status"] == "5.1.1" and second["Status"] == "5.0.0"
    assert second["Diagnostic-Code"] == "smtp; 451 try later"
    assert b"secret body" not in report  # only the header is returned
    assert "Subject: hi" in headers.get_payload()
    assert status_of("421 4.4.2 timeout", expired=True) == "4.4.7"


def test_retry_delays_double_up_to_the_ceiling() -> None:
    assert [retry_delay(n, base=60, ceiling=3600) for n in range(1, 9)] == [
        60, 120, 240, 480, 960, 1920, 3600, 3600,
    ]  # fmt: skip


def test_relay_defaults_of_known_and_unknown_providers() -> None:
    gmail = relay_defaults("Someone@GMail.com")
    assert (gmail.host, gmail.port, gmail.security, gmail.saves_sent_copy) == (
        "smtp.gmail.com", 587, "starttls", True,
    )  # fmt: skip
    other = relay_defaults("me@mail.example.co.uk")
    assert (other.host, other.port, other.security, other.saves_sent_copy) == (
        "smtp.mail.example.co.uk", 587, "starttls", False,
    )  # fmt: skip
