"""Delivery status notifications (RFC 3464) for mail the relay gave up on (sans-IO).

A `multipart/report; report-type=delivery-status` (RFC 6522) with a human-readable part,
the machine-readable `message/delivery-status`, and the original message's header
(`text/rfc822-headers`), put into the sender's own INBOX.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime, make_msgid

from gateway.smtp.headers import split_header

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def status_of(reply: str, *, expired: bool) -> str:
    """The RFC 3463 status for a recipient: from the upstream's reply when it gave one."""
    found = _ENHANCED.search(reply)
    if found and found.group(1).startswith("5"):
        return found.group(1)
    # 4.4.7: delivery time expired; a permanent failure without a code: 5.0.0.
    return "4.4.7" if expired else "5.0.0"


def _clean(text: str) -> str:
    return " ".join(text.split())


def build_bounce(
    *,
    reporting_host: str,
    sender: str,
    failures: Mapping[str, str],
    original: bytes,
    arrival: datetime,
    now: datetime,
    remote_host: str,
    expired: bool,
) -> bytes:
    """The report for `failures` (recipient -> the reason it failed)."""
    boundary = f"=_bounce_{secrets.token_hex(12)}"
    header, _ = split_header(original)
    why = (
        "could not be delivered before its time in the queue ran out"
        if expired
        else "was refused by the sending server of your address"
    )
    explanation = [
        "This is the mail gateway at " + reporting_host + ".",
        "",
        f"Your message {why}. It was not delivered to:",
        "",
        *(f"  <{rcpt}>: {_clean(reason)}" for rcpt, reason in failures.items()),
        "",
        "The message's header follows.",
    ]
    status_fields = [
        f"Reporting-MTA: dns; {reporting_host}",
        f"Arrival-Date: {format_datetime(arrival)}",
    ]
    for rcpt, reason in failures.items():
        status_fields += [
            "",
            f"Final-Recipient: rfc822; {rcpt}",
            "Action: failed",
            f"Status: {status_of(reason, expired=expired)}",
            f"Remote-MTA: dns; {remote_host}",
            f"Diagnostic-Code: smtp; {_clean(reason)}",
        ]
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_host}>",
        f"To: <{sender}>",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(now)}",
        f"Message-ID: {make_msgid(domain=reporting_host)}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated delivery status notification.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        *explanation,
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        *status_fields,
        "",
        f"--{boundary}",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    text = "\r\n".join(lines).encode("utf-8") + b"\r\n"
    original_header = header.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return text + original_header + f"\r\n--{boundary}--\r\n".encode("ascii")
