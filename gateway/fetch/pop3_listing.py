"""What the POP3 server holds: message numbers, sizes and an origin key for each.

The key is the UIDL (RFC 1939 §7) when the server has it; otherwise a content key from the
headers (`TOP n 0`) plus size, so a server without UIDL still never yields a duplicate.
"""

from __future__ import annotations

import hashlib
import poplib
from collections import Counter
from dataclasses import dataclass

from gateway.fetch.errors import SyncError
from gateway.fetch.pop3_wire import command, network_step, pipelined, read_multiline

# A space can never occur in a real UIDL (RFC 1939 §7: 0x21-0x7E), so content keys stored in
# the same column cannot collide with one.
CONTENT_KEY_PREFIX = "content-sha256 "


@dataclass(frozen=True)
class Listing:
    sizes: dict[int, int]
    keys: dict[int, str]
    content_keyed: bool


def list_messages(client: poplib.POP3, *, depth: int) -> Listing:
    """LIST and UIDL (or the TOP fallback) in as few round trips as the server allows."""
    with network_step():
        sizes = _parse_sizes(client.list()[1])
    try:
        with network_step():
            uidls = _parse_pairs(client.uidl()[1])
    except SyncError as error:
        if error.error_class != "protocol":
            raise
        return Listing(sizes, content_keys(client, sizes, depth=depth), True)
    missing = set(sizes) - set(uidls)
    if missing:
        raise SyncError("protocol", f"UIDL omitted {len(missing)} listed messages")
    return Listing(sizes, {number: uidls[number] for number in sizes}, False)


def content_keys(client: poplib.POP3, sizes: dict[int, int], *, depth: int) -> dict[int, str]:
    """Hash of each message's header block and size; repeats numbered in listing order."""
    numbers = sorted(sizes)
    digests: dict[int, str] = {}
    commands = [command("TOP", number, 0) for number in numbers]
    for reply in pipelined(client, commands, depth=depth):
        number = numbers[reply.index]
        if not reply.ok:
            raise SyncError("protocol", "server has neither UIDL nor TOP; cannot dedupe")
        header = read_multiline(client)
        hasher = hashlib.sha256(header)
        hasher.update(b"\0size=%d" % sizes[number])
        digests[number] = hasher.hexdigest()
    seen: Counter[str] = Counter()
    keys: dict[int, str] = {}
    for number in numbers:
        digest = digests[number]
        seen[digest] += 1
        occurrence = seen[digest]
        suffix = "" if occurrence == 1 else f" #{occurrence}"
        keys[number] = f"{CONTENT_KEY_PREFIX}{digest}{suffix}"
    return keys


def content_hash_of(key: str) -> str | None:
    if not key.startswith(CONTENT_KEY_PREFIX):
        return None
    return key[len(CONTENT_KEY_PREFIX) :].split(" ", 1)[0]


def _parse_pairs(lines: list[bytes]) -> dict[int, str]:
    """`n token` lines of a LIST or UIDL response (RFC 1939 §5, §7)."""
    pairs: dict[int, str] = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or not fields[0].isdigit():
            raise SyncError("protocol", "malformed scan listing from the server")
        pairs[int(fields[0])] = fields[1].decode("ascii", "replace")
    return pairs


def _parse_sizes(lines: list[bytes]) -> dict[int, int]:
    sizes = _parse_pairs(lines)
    if not all(size.isdigit() for size in sizes.values()):
        raise SyncError("protocol", "malformed message size in LIST")
    return {number: int(size) for number, size in sizes.items()}
