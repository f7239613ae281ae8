"""Append a relayed message to the IMAP source's own Sent folder (blocking: run in a thread).

For providers that do not file submitted mail themselves. The folder is the one the source
marks `\\Sent` (RFC 6154), else `Sent` (created if missing). Through the fetchers' typed IMAP
peer, like every other conversation with a source.
"""

from __future__ import annotations

from datetime import datetime

from gateway.fetch.imap_client import ImapClientPeer
from gateway.fetch.imap_connection import ImapAuthenticator, open_imap
from gateway.store.views import SourceInfo

SENT_FOLDER = "Sent"


def append_to_source_sent(
    source: SourceInfo, authenticator: ImapAuthenticator, content: bytes, *, sent_at: datetime
) -> str:
    """APPEND `content` (\\Seen) to the source's Sent folder; returns the folder's name."""
    peer = open_imap(source, authenticator)
    try:
        folder = _sent_folder(peer)
        peer.append(folder, content, flags=("\\Seen",), internal_date=sent_at)
        return folder
    finally:
        peer.close()


def _sent_folder(peer: ImapClientPeer) -> str:
    folders = peer.list_folders()
    for folder in folders:
        if "\\Sent" in folder.attributes:
            return folder.name
    if not any(folder.name == SENT_FOLDER for folder in folders):
        peer.create_folder(SENT_FOLDER)
    return SENT_FOLDER
