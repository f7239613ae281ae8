"""Sans-IO IMAP4rev1 protocol core: command parsing, response encoding, modified UTF-7.

Command dataclasses live in `commands`, SEARCH keys in `search_keys`, FETCH items in
`fetch_items`; import them from there.
"""

from gateway.imap.protocol.events import NEED_DATA, CommandError, LiteralContinuation, NeedData
from gateway.imap.protocol.mutf7 import MailboxNameError, decode_mailbox_name, encode_mailbox_name
from gateway.imap.protocol.parser import CommandParser

__all__ = [
    "NEED_DATA",
    "CommandError",
    "CommandParser",
    "LiteralContinuation",
    "MailboxNameError",
    "NeedData",
    "decode_mailbox_name",
    "encode_mailbox_name",
]
