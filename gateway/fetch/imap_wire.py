"""The few IMAP commands the source engine sends that IMAPClient cannot express.

IMAPClient 4.1 drops FETCH results for ranges such as `1:*` (it filters the response by the
integers it was given) and does not return COPYUID. These helpers issue UID FETCH / STORE /
COPY / MOVE / EXPUNGE with a compact sequence set through the client's own connection and
parse the responses with IMAPClient's parser, so quoting and literals stay its business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

from gateway.fetch.errors import SyncError, server_text
from gateway.fetch.fetch_fast import FetchResult, parse_flat_fetch

_COPYUID = re.compile(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", re.I)


def sequence_set(uids: Iterable[int]) -> str:
    """`1:3,7,9:10` for [1, 2, 3, 7, 9, 10]: short commands for long runs of UIDs."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = previous = None
    for uid in ordered:
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            ranges.append(_range(start, previous))
        start = previous = uid
    if start is not None:
        ranges.append(_range(start, previous))
    return ",".join(ranges)


def _range(start: int, end: int | None) -> str:
    return str(start) if end is None or end == start else f"{start}:{end}"


def parse_uid_set(text: str) -> list[int]:
    """Expand a UID set without `*` (as in COPYUID), keeping its order (RFC 4315 §4.3)."""
    uids: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        step = 1 if last >= first else -1
        uids.extend(range(first, last + step, step))
    return uids


def uid_fetch(
    client: IMAPClient, uid_set: str, items: str, *, modifiers: str | None = None
) -> FetchResult:
    """`UID FETCH <set> (<items>) [(<modifiers>)]`, keyed by UID."""
    if not uid_set:
        return {}
    args: list[bytes] = [b"FETCH", uid_set.encode(), f"({items})".encode()]
    if modifiers:
        args.append(f"({modifiers})".encode())
    data = _run(client, "FETCH", *args)
    fast = parse_flat_fetch(data)
    if fast is not None:
        return fast
    parsed = parse_fetch_response(data, False, True)
    return {int(uid): values for uid, values in parsed.items()}


def uid_store(client: IMAPClient, uid_set: str, action: str, flags: Iterable[str]) -> None:
    """`UID STORE <set> <action>.SILENT (<flags>)`, action being `+FLAGS` or `-FLAGS`."""
    names = " ".join(flags)
    if uid_set and names:
        _run(
            client,
            "STORE",
            b"STORE",
            uid_set.encode(),
            f"{action}.SILENT".encode(),
            f"({names})".encode(),
        )


def uid_transfer(
    client: IMAPClient, command: str, uid_set: str, folder: str
) -> tuple[int, dict[int, int]] | None:
    """UID COPY or UID MOVE; (destination UIDVALIDITY, source UID → new UID) from COPYUID,
    or None when the server does not say (no UIDPLUS)."""
    client._imap.untagged_responses.pop("OK", None)
    data = _run(
        client, command, command.encode(), uid_set.encode(), client._normalise_folder(folder)
    )
    texts = list(data) + list(client._imap.untagged_responses.pop("OK", []))
    for text in texts:
        match = _COPYUID.search(text if isinstance(text, bytes) else b"")
        if match:
            pairs = zip(
                parse_uid_set(match.group(2).decode()),
                parse_uid_set(match.group(3).decode()),
                strict=False,
            )
            return int(match.group(1)), dict(pairs)
    return None


def uid_expunge(client: IMAPClient, uid_set: str) -> None:
    """UID EXPUNGE (RFC 4315): only these messages, never another client's \\Deleted ones."""
    _run(client, "EXPUNGE", b"EXPUNGE", uid_set.encode())


def _run(client: IMAPClient, name: str, *args: bytes) -> list[Any]:
    imap = client._imap
    tag = imap._command("UID", *args)
    typ, data = imap._command_complete(name, tag)
    if typ != "OK":
        raise SyncError("protocol", f"UID {name} refused: {server_text(data[0] if data else b'')}")
    if name == "FETCH":
        _typ, data = imap._untagged_response(typ, data, "FETCH")
        return [item for item in data if item is not None]
    return list(data)
