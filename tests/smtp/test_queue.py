"""The outbound queue against a real upstream: outages, refusals, retries on schedule."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.store.views import OutboundSubmission
from tests.smtp.clients import message_bytes, read_mailbox, submit
from tests.support.smtp_peers import ADDRESS, FakeClock, SmtpGateway, UpstreamSmtp


@pytest.fixture
def fast_retry_gateway(tmp_path: Path, upstream: UpstreamSmtp) -> Iterator[SmtpGateway]:
    with SmtpGateway(
        tmp_path / "data",
        allow_plaintext=False,
        smtp_retry_base_seconds=0.3,
        smtp_retry_max_seconds=0.3,
        smtp_queue_poll_seconds=0.1,
    ) as running:
        user_id = running.add_user()
        running.store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        yield running


def test_upstream_down_then_back_delivers_exactly_once(
    fast_retry_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    gateway = fast_retry_gateway
    upstream.stop()
    submit(gateway, message_bytes(subject="during the outage"))
    gateway.wait_for(lambda: any(m.attempts >= 2 for m in gateway.store.list_outbound_messages()))
    (queued,) = gateway.store.list_outbound_messages()
    assert queued.state == "queued" and "Connect" in (queued.last_error or ""), queued
    upstream.start()
    gateway.wait_for(lambda: len(upstream.messages()) == 1)
    gateway.wait_for(lambda: gateway.store.list_outbound_messages() == [])
    time.sleep(1.0)  # several retry periods: nothing is sent again
    assert len(upstream.messages()) == 1
    assert upstream.messages()[0].message["Subject"] == "during the outage"
    (sent,) = gateway.store.list_outbound_messages(states=("sent",))
    assert sent.upstream_reply == "250 2.0.0 Ok: queued"


def test_a_permanent_refusal_bounces_into_the_inbox(
    smtp_gateway: SmtpGateway, upstream: UpstreamSmtp
) -> None:
    upstream.reply = "554 5.7.1 Message rejected as spam"
    submit(smtp_gateway, message_bytes(subject="will bounce"), recipients=("bob@example.net",))
    smtp_gateway.wait_for(lambda: len(read_mailbox(smtp_gateway, "INBOX")) == 1)
    ((_, report),) = read_mailbox(smtp_gateway, "INBOX")
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert report["To"] == f"<{ADDRESS}>" and report["Auto-Submitted"] == "auto-replied"
    text, status, headers = report.get_payload()
    assert "bob@example.net" in text.get_payload() and "spam" in text.get_payload()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_recipient = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; gateway.test"
    assert per_recipient["Final-Recipient"] == "rfc822; bob@example.net"
    assert per_recipient["Action"] == "failed" and per_recipient["Status"] == "5.7.1"
    assert per_recipient["Diagnostic-Code"] == "smtp; 554 5.7.1 Message rejected as spam"
    assert headers.get_content_type() == "text/rfc822-headers"
    original = email.message_from_bytes(headers.get_payload().encode())
    assert original["Subject"] == "will bounce"
    (bounced,) = smtp_gateway.store.list_outbound_messages(states=("bounced",))
    assert "spam" in (bounced.last_error or "")
    assert read_mailbox(smtp_gateway, "Sent") == [] and upstream.messages() == []


def test_temporary_failures_are_retried_on_schedule_for_an_hour_of_fake_clock(
    tmp_path: Path, upstream: UpstreamSmtp
) -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    clock = FakeClock(start)
    with SmtpGateway(tmp_path / "data", allow_plaintext=False, clock=clock, relay=False) as gateway:
        user_id = gateway.add_user()
        gateway.store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        upstream.reply = "451 4.3.0 Try again later"
        submit(gateway, message_bytes())
        attempts_at: list[float] = []
        while clock.now <= start + timedelta(hours=1):
            if gateway.run_worker_once():
                attempts_at.append((clock.now - start).total_seconds())
            clock.now += timedelta(seconds=10)
        # 60 s doubling: 0, +60, +120, +240, +480, +960 (the next, +1920, is past the hour).
        assert attempts_at == [0, 60, 180, 420, 900, 1860]
        (queued,) = gateway.store.list_outbound_messages()
        assert queued.attempts == 6 and queued.last_error == "451 4.3.0 Try again later"
        assert queued.next_attempt_at == start + timedelta(seconds=1860 + 1920)
        # Later attempts wait the ceiling (an hour); after 5 days the message bounces.
        clock.now = queued.expires_at
        assert gateway.run_worker_once() == 1
        (bounced,) = gateway.store.list_outbound_messages(states=("bounced",))
        assert bounced.id == queued.id
        ((_, report),) = read_mailbox(gateway, "INBOX")
        status = report.get_payload()[1].get_payload()[1]
        assert status["Status"] == "4.4.7" and "Try again later" in status["Diagnostic-Code"]
        assert upstream.messages() == []


def test_a_held_row_whose_file_never_came_is_dropped_unacknowledged(
    tmp_path: Path, upstream: UpstreamSmtp
) -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    clock = FakeClock(start)
    with SmtpGateway(tmp_path / "data", allow_plaintext=False, clock=clock, relay=False) as gateway:
        store = gateway.store
        user_id = gateway.add_user()
        identity = store.add_identity(user_id=user_id, address=ADDRESS, **upstream.relay_settings())
        # What a crash leaves between the row's commit and the end of its file's sync (the
        # two run side by side before the 250): a held row, and no file under its name.
        named = store.name_outbound_blob(content=message_bytes(subject="never acknowledged"))
        (queue_id,) = store.queue_outbound_messages(
            items=[
                OutboundSubmission(
                    user_id=user_id,
                    identity_id=identity.id,
                    sender=ADDRESS,
                    recipients=("bob@example.net",),
                    blob=named,
                    message_id_header="<held@example.org>",
                )
            ],
            now=start,
            lifetime=timedelta(days=5),
            hold=timedelta(seconds=30),
        )
        assert gateway.run_worker_once() == 0  # held: not due
        clock.now += timedelta(seconds=30)
        assert gateway.run_worker_once() == 1
        waiting = store.get_outbound_message(outbound_id=queue_id)
        assert waiting.state == "queued" and waiting.last_error == "message file not in place yet"
        clock.now = start + timedelta(minutes=16)
        assert gateway.run_worker_once() == 1
        dropped = store.get_outbound_message(outbound_id=queue_id)
        assert dropped.state == "dropped" and "never acknowledged" in (dropped.last_error or "")
        # Nothing left, and no bounce: the client was never told the message was taken.
        assert upstream.messages() == [] and read_mailbox(gateway, "INBOX") == []
