"""Never an open relay: every attempt is refused with a 5xx and nothing reaches the upstream
(DESIGN invariant 7)."""

from __future__ import annotations

import base64
import smtplib
import time
from pathlib import Path

import pytest

from tests.smtp.clients import message_bytes
from tests.support.gateway_server import PASSWORD, USER
from tests.support.smtp_peers import ADDRESS, SmtpGateway, UpstreamSmtp


def _authenticated(gateway: SmtpGateway) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", gateway.submission_port, timeout=30)
    client.starttls(context=gateway.client_tls_context())
    client.login(USER, PASSWORD)
    return client


def _nothing_relayed(gateway: SmtpGateway, upstream: UpstreamSmtp) -> None:
    assert gateway.store.list_outbound_messages(states=("queued", "relayed", "sent")) == []
    time.sleep(0.3)  # give a wrongly queued message the time to leave
    assert upstream.messages() == []


def test_no_auth_is_refused_on_both_ports(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_gateway.submission_port, timeout=30) as client:
        client.starttls(context=smtp_gateway.client_tls_context())
        client.ehlo("client.test")
        code, reply = client.mail(ADDRESS)
        assert code == 530 and reply.startswith(b"5.7.0"), reply
        code, _ = client.rcpt("bob@example.net")
        assert code == 530
    with smtplib.SMTP_SSL(
        "127.0.0.1", smtp_gateway.smtps_port, context=smtp_gateway.client_tls_context(), timeout=30
    ) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(ADDRESS, ["bob@example.net"], message_bytes())
        assert refused.value.smtp_code == 530
    _nothing_relayed(smtp_gateway, upstream)


def test_auth_over_plaintext_is_refused(smtp_gateway: SmtpGateway, upstream: UpstreamSmtp) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_gateway.submission_port, timeout=30) as client:
        client.ehlo("client.test")
        assert "auth" not in client.esmtp_features
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        code, _ = client.docmd("AUTH", f"PLAIN {plain}")
        assert code == 530
        code, _ = client.mail(ADDRESS)
        assert code == 530
    _nothing_relayed(smtp_gateway, upstream)


def test_a_foreign_envelope_sender_is_refused(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    with _authenticated(smtp_gateway) as client:
        for sender in ("ceo@bank.example", "alice@example.org.evil.test", "alice@Example.net"):
            code, reply = client.mail(sender)
            assert code == 553 and reply.startswith(b"5.7.1"), (sender, reply)
            client.rset()
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("ceo@bank.example", ["bob@example.net"], message_bytes())
    _nothing_relayed(smtp_gateway, upstream)


def test_a_foreign_from_header_is_refused(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    with _authenticated(smtp_gateway) as client:
        forged = message_bytes(sender="ceo@bank.example")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail(ADDRESS, ["bob@example.net"], forged)
        assert refused.value.smtp_code == 550
        two_authors = (
            f"From: {ADDRESS}, ceo@bank.example\r\nTo: bob@example.net\r\n\r\nhi\r\n".encode()
        )
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail(ADDRESS, ["bob@example.net"], two_authors)
        with pytest.raises(smtplib.SMTPDataError) as missing:
            client.sendmail(ADDRESS, ["bob@example.net"], b"To: bob@example.net\r\n\r\nhi\r\n")
        assert missing.value.smtp_code == 550
    _nothing_relayed(smtp_gateway, upstream)


@pytest.mark.parametrize(
    "recipient",
    [
        "bob%example.net@example.org",
        "example.net!bob@example.org",
        "@relay.example:bob@example.net",
        '"bob@example.net"@example.org',
        "bob@[127.0.0.1]",
    ],
)
def test_routing_tricks_in_recipients_are_refused(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp, recipient: str
) -> None:
    with _authenticated(smtp_gateway) as client:
        client.mail(ADDRESS)
        code, reply = client.docmd("RCPT", f"TO:<{recipient}>")
        assert code == 553 and reply.startswith(b"5.1.3"), (recipient, reply)
        code, _ = client.docmd("DATA")
        assert code == 503
    _nothing_relayed(smtp_gateway, upstream)


def test_failed_auth_is_throttled_per_address_and_user(
    tmp_path: Path, upstream: UpstreamSmtp
) -> None:
    """The shared login throttle (gateway/auth_throttle.py): after the free failures each
    attempt waits 1, 2 ... s for its turn; past the patience it is refused unchecked."""
    wrong = base64.b64encode(f"\0{USER}\0wrong".encode()).decode()
    right = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    delays = []
    with (
        SmtpGateway(tmp_path / "data", allow_plaintext=False, auth_free_failures=3) as gateway,
        smtplib.SMTP("127.0.0.1", gateway.submission_port, timeout=60) as client,
    ):
        gateway.add_user()
        client.starttls(context=gateway.client_tls_context())
        client.ehlo("client.test")
        for _ in range(6):
            started = time.monotonic()
            code, reply = client.docmd("AUTH", f"PLAIN {wrong}")
            delays.append(time.monotonic() - started)
            assert code == 535 and reply.startswith(b"5.7.8"), reply
        # Three failures are free; the fourth sets a wait of 1 s before the fifth is checked,
        # the fifth one of 2 s (each delay here also holds the password check's own time,
        # which varies on a loaded machine; the wait runs from when the failure was recorded).
        free = min(delays[:4])
        assert delays[4] >= free + 0.6 and delays[5] >= free + 1.5, delays
        assert delays[5] >= delays[4] + 0.5, delays
        code, _ = client.docmd("AUTH", f"PLAIN {right}")
        assert code == 235
