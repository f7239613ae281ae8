"""The Sent copy at the IMAP source itself (Dovecot), for providers that keep none."""

from __future__ import annotations

import email
from pathlib import Path

from imapclient import IMAPClient

from tests.fetch.helpers import add_imap_source
from tests.smtp.clients import message_bytes, read_mailbox, submit
from tests.support.dovecot import DovecotServer
from tests.support.smtp_peers import SmtpGateway, UpstreamSmtp

ACCOUNT = "sender@dovecot.test"


def _source_sent(dovecot: DovecotServer) -> list[tuple[tuple[bytes, ...], bytes]]:
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False, timeout=10) as client:
        client.login(ACCOUNT, "pw")
        if not client.folder_exists("Sent"):
            return []
        client.select_folder("Sent", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[]"])
        return [(data[b"FLAGS"], data[b"BODY[]"]) for _, data in sorted(fetched.items())]


def test_the_sent_copy_reaches_the_source_when_the_identity_asks(
    tmp_path: Path, upstream: UpstreamSmtp, dovecot: DovecotServer
) -> None:
    dovecot.add_user(ACCOUNT, "pw")
    with SmtpGateway(tmp_path / "data", allow_plaintext=False) as gateway:
        user_id = gateway.add_user()
        source = add_imap_source(
            gateway.store, port=dovecot.imap_port, username=ACCOUNT, password="pw"
        )
        # The source brought its address as an identity, with the provider's defaults
        # (a copy in its Sent folder: an unknown provider is not assumed to keep one).
        brought = gateway.store.find_identity(user_id=user_id, address=ACCOUNT)
        assert brought is not None and brought.source_id == source.id
        assert brought.save_to_source_sent and brought.relay_host == "smtp.dovecot.test"
        # Point it at our upstream instead (the provider's server is not reachable here).
        gateway.store.remove_identity(user_id=user_id, address=ACCOUNT)
        gateway.store.add_identity(
            user_id=user_id, address=ACCOUNT, source_id=source.id, **upstream.relay_settings()
        )
        submit(gateway, message_bytes(sender=ACCOUNT, subject="kept at the source"), sender=ACCOUNT)
        gateway.wait_for(lambda: gateway.store.list_outbound_messages() == [])
        assert len(upstream.messages()) == 1
        ((flags, content),) = _source_sent(dovecot)
        assert b"\\Seen" in flags
        assert email.message_from_bytes(content)["Subject"] == "kept at the source"
        ((_, unified),) = read_mailbox(gateway, "Sent")
        assert unified["Message-ID"] == email.message_from_bytes(content)["Message-ID"]

        # With the option off, only the unified Sent gets a copy.
        gateway.store.remove_identity(user_id=user_id, address=ACCOUNT)
        gateway.store.add_identity(
            user_id=user_id,
            address=ACCOUNT,
            source_id=source.id,
            save_to_source_sent=False,
            **upstream.relay_settings(),
        )
        submit(gateway, message_bytes(sender=ACCOUNT, subject="not at the source"), sender=ACCOUNT)
        gateway.wait_for(lambda: len(read_mailbox(gateway, "Sent")) == 2)
        assert len(upstream.messages()) == 2
        assert len(_source_sent(dovecot)) == 1
