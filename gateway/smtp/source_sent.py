"""Append a relayed message to the IMAP source's own Sent folder (blocking: run in a thread).

For providers that do not file submitted mail themselves. The folder is the one the source
marks `\\Sent` (RFC 6154), else `Sent` (created if missing).
"""

from __future__ import annotations

from imapclient import IMAPClient

from gateway.fetch.connections import PasswordAuthenticator
from gateway.fetch.imap_connection import close_quietly, open_imap
from gateway.store.views import SourceInfo

SEEN = b"\\Seen"


def append_to_source_sent(source: SourceInfo, secret: str, content: bytes) -> str:
    """APPEND `content` (\\Seen) to the source's Sent folder; returns the folder's name."""
    client = open_imap(source, PasswordAuthenticator(secret))
    try:
        folder = _sent_folder(client)
        client.append(folder, content, flags=(SEEN,))
        return folder
    finally:
        close_quietly(client)


def _sent_folder(client: IMAPClient) -> str:
    found = client.find_special_folder(b"\\Sent")
    if found:
        return str(found)
    if not client.folder_exists("Sent"):
        client.create_folder("Sent")
    return "Sent"
