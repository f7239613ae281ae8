"""Relay sessions reused between messages (gateway/smtp/relay_pool.py), against the real
STARTTLS + AUTH upstream."""

from __future__ import annotations

import time

from gateway.smtp.relay_pool import IDLE_SECONDS
from tests.smtp.clients import message_bytes, submit
from tests.support.smtp_peers import SmtpGateway, UpstreamSmtp


def _send_and_wait(gateway: SmtpGateway, upstream: UpstreamSmtp, subject: str) -> None:
    count = len(upstream.messages())
    submit(gateway, message_bytes(subject=subject))
    gateway.wait_for(lambda: len(upstream.messages()) == count + 1)


def test_one_upstream_session_carries_consecutive_messages(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    for n in range(3):
        _send_and_wait(smtp_gateway, upstream, f"message {n}")
    # One STARTTLS + AUTH for all three (each later one found the session idle, RSET it).
    assert upstream.logins == 1
    # An idle session is closed after a while; the next message opens a new one.
    time.sleep(IDLE_SECONDS * 2)
    _send_and_wait(smtp_gateway, upstream, "after the pause")
    assert upstream.logins == 2
    assert [m.message["Subject"] for m in upstream.messages()] == [
        "message 0",
        "message 1",
        "message 2",
        "after the pause",
    ]
