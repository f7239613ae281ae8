"""Submission through our gateway to a real provider-like upstream (STARTTLS + AUTH), with
smtplib and swaks as clients and imaplib reading the Sent copy and bounces."""

from __future__ import annotations

import smtplib
import subprocess

from tests.smtp.clients import message_bytes, read_mailbox, submit
from tests.support.gateway_server import PASSWORD, USER
from tests.support.smtp_peers import ADDRESS, SmtpGateway, UpstreamSmtp


def test_a_message_is_relayed_once_with_bcc_stripped_and_date_and_message_id_added(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    content = message_bytes(extra="Bcc: secret@example.com,\r\n\tother@example.com\r\n")
    refused = submit(
        smtp_gateway,
        content,
        recipients=("bob@example.net", "secret@example.com", "other@example.com"),
    )
    assert refused == {}
    smtp_gateway.wait_for(lambda: len(upstream.messages()) == 1)
    (got,) = upstream.messages()
    assert got.sender == ADDRESS
    assert sorted(got.recipients) == ["bob@example.net", "other@example.com", "secret@example.com"]
    message = got.message
    assert message["Bcc"] is None and b"secret@example.com" not in got.content
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert message.get_payload() == "Hi Bob,\r\n\r\nsee you.\r\n"
    assert upstream.logins == 1
    # The unified Sent copy: \Seen, and with the Bcc the user wrote.
    smtp_gateway.wait_for(lambda: len(read_mailbox(smtp_gateway, "Sent")) == 1)
    ((flags, sent),) = read_mailbox(smtp_gateway, "Sent")
    assert b"\\Seen" in flags
    assert sent["Message-ID"] == message["Message-ID"]
    assert "secret@example.com" in sent["Bcc"]
    smtp_gateway.wait_for(
        lambda: (
            [m.state for m in smtp_gateway.store.list_outbound_messages(states=("sent",))]
            == ["sent"]
        )
    )
    assert smtp_gateway.store.list_outbound_messages() == []
    assert len(upstream.messages()) == 1


def test_headers_the_client_gave_are_kept(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    extra = "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\nMessage-ID: <own@example.org>\r\n"
    submit(smtp_gateway, message_bytes(extra=extra))
    smtp_gateway.wait_for(lambda: len(upstream.messages()) == 1)
    message = upstream.messages()[0].message
    assert message.get_all("Message-ID") == ["<own@example.org>"]
    assert message.get_all("Date") == ["Mon, 07 Dec 2026 10:00:00 +0000"]


def test_ehlo_offers_the_submission_extensions_and_auth_only_after_tls(
    smtp_gateway: SmtpGateway,
) -> None:
    with smtplib.SMTP("127.0.0.1", smtp_gateway.submission_port, timeout=30) as client:
        client.ehlo("client.test")
        for extension in ("size", "8bitmime", "smtputf8", "pipelining", "enhancedstatuscodes"):
            assert client.has_extn(extension), extension
        assert client.esmtp_features["size"] == str(smtp_gateway.settings.max_message_size)
        assert client.has_extn("starttls") and not client.has_extn("auth")
        code, reply = client.docmd("AUTH", "PLAIN AGFsaWNlAHg=")
        assert code == 530 and b"STARTTLS" in reply, reply
        client.starttls(context=smtp_gateway.client_tls_context())
        client.ehlo("client.test")
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert not client.has_extn("starttls")


def test_auth_login_and_the_smtps_port_with_swaks(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    result = subprocess.run(
        [
            "swaks",
            "--server", f"127.0.0.1:{smtp_gateway.smtps_port}",
            "--tls-on-connect",
            "--auth", "LOGIN",
            "--auth-user", USER,
            "--auth-password", PASSWORD,
            "--from", ADDRESS,
            "--to", "carol@example.net",
            "--header", f"From: Alice <{ADDRESS}>",
            "--header", "Subject: via swaks",
            "--body", "sent with swaks, a real client",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Queued as" in result.stdout
    smtp_gateway.wait_for(lambda: len(upstream.messages()) == 1)
    got = upstream.messages()[0]
    assert got.recipients == ["carol@example.net"] and got.message["Subject"] == "via swaks"


def test_pipelined_transaction_with_swaks(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    result = subprocess.run(
        [
            "swaks",
            "--server", f"127.0.0.1:{smtp_gateway.submission_port}",
            "--tls", "--pipeline",
            "--auth", "PLAIN",
            "--auth-user", USER,
            "--auth-password", PASSWORD,
            "--from", ADDRESS,
            "--to", "dave@example.net,erin@example.net",
            "--header", f"From: {ADDRESS}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    smtp_gateway.wait_for(lambda: len(upstream.messages()) == 1)
    assert upstream.messages()[0].recipients == ["dave@example.net", "erin@example.net"]


def test_an_identity_may_send_as_any_of_its_users_addresses(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    user = smtp_gateway.store.get_user(name=USER)
    smtp_gateway.store.add_identity(
        user_id=user.id, address="Alias@Example.org", **upstream.relay_settings()
    )
    submit(
        smtp_gateway,
        message_bytes(sender="alias@example.org"),
        sender="ALIAS@example.org",
    )
    smtp_gateway.wait_for(lambda: len(upstream.messages()) == 1)
    assert upstream.messages()[0].sender == "ALIAS@example.org"


def test_smtputf8_and_8bit_mail_is_relayed_as_such(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    content = (
        f"From: Alice <{ADDRESS}>\r\nTo: Jörg <jörg@exämple.org>\r\nSubject: Grüße\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Schöne Grüße, 日本語も\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", smtp_gateway.submission_port, timeout=30) as client:
        client.starttls(context=smtp_gateway.client_tls_context())
        client.login(USER, PASSWORD)
        client.sendmail(
            ADDRESS, ["jörg@exämple.org"], content, mail_options=["SMTPUTF8", "BODY=8BITMIME"]
        )
    smtp_gateway.wait_for(lambda: len(upstream.messages()) == 1)
    got = upstream.messages()[0]
    assert got.recipients == ["jörg@exämple.org"]
    assert "Schöne Grüße, 日本語も".encode() in got.content
