"""The one module that knows IMAPClient's and imaplib's internals: `ImapClientPeer`.

IMAPClient (pinned in pyproject.toml to the versions the tests ran on) covers most of what the
sync needs, but 3.x/4.x drop FETCH results for ranges such as `1:*` (they filter the response
by the integers they were given), never return COPYUID, and turn imaplib's protocol trace on.
The workarounds below reach into `client._imap` (imaplib's `_command`, `_command_complete`,
`_untagged_response`, `untagged_responses`, `debug`) and `client._normalise_folder`; nothing
else in the project may. The rest of the engine sees the typed `ImapPeer` Protocol.

Authentication is the seam for mechanisms: `login` is what `PasswordAuthenticator` calls,
`oauth_login` (XOAUTH2/OAUTHBEARER) what `gateway.oauth2.authenticator` calls.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from imapclient.response_parser import parse_fetch_response

from gateway.fetch.errors import SyncError, classify_imap_reply, server_text
from gateway.fetch.fetch_fast import FetchResult, parse_flat_fetch
from gateway.fetch.imap_folders import RemoteFolder
from gateway.fetch.imap_peer import (
    AppendedUid,
    CopiedUids,
    FlagAction,
    RemoteMessage,
    SelectedFolder,
    StatusItem,
    TransferCommand,
)
from gateway.fetch.imap_wire import parse_uid_set

_COPYUID = re.compile(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]", re.I)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.I)
_METADATA_ITEMS = "RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"


class ImapClientPeer:
    """`ImapPeer` over one IMAPClient connection; also what push (IDLE) and login need."""

    def __init__(self, client: IMAPClient) -> None:
        self._client = client
        # Dates exactly as the server sent them; the store keeps their offsets.
        client.normalise_times = False
        self._quiet_protocol_trace()
        self._capabilities: frozenset[str] | None = None

    # --- connection and login ----------------------------------------------------------

    def oauth_login(self, username: str, token: str, *, mechanism: str) -> None:
        """AUTHENTICATE XOAUTH2 or OAUTHBEARER (RFC 7628) with a bearer token; IMAPClient
        answers the server's error challenge itself."""
        try:
            if mechanism == "OAUTHBEARER":
                self._client.oauthbearer_login(username, token)
            else:
                self._client.oauth2_login(username, token)
        except LoginError as error:
            raise classify_imap_reply(_unrepr(str(error)), during_auth=True) from None
        self._capabilities = None

    def login(self, username: str, password: str) -> None:
        """LOGIN (RFC 3501 §6.2.3); capabilities are read afresh afterwards."""
        try:
            self._client.login(username, password)
        except LoginError as error:
            # IMAPClient wraps imaplib's error as str(exception), which holds the repr of the
            # server's bytes ("b'[AUTHENTICATIONFAILED] …'"): classify the text itself.
            raise classify_imap_reply(_unrepr(str(error)), during_auth=True) from None
        self._capabilities = None

    def has_capability(self, name: str) -> bool:
        return bool(self._client.has_capability(name))

    def start_tls(self, context: Any) -> None:
        self._client.starttls(context)

    def socket(self) -> socket.socket:
        sock: socket.socket = self._client.socket()
        return sock

    def close(self) -> None:
        try:
            self._client.logout()
        except Exception:
            # The connection may already be gone; closing the socket is all that is left.
            with contextlib.suppress(Exception):
                self._client.shutdown()

    def shutdown(self) -> None:
        """Close the socket without LOGOUT."""
        self._client.shutdown()

    def shutdown_socket(self) -> None:
        """Shut the socket down from another thread: wakes a blocked `idle_check` at once."""
        with contextlib.suppress(Exception):
            self._client.socket().shutdown(socket.SHUT_RDWR)

    def noop(self) -> None:
        self._client.noop()

    def discard_unsolicited(self) -> None:
        self._client._imap.untagged_responses.clear()

    # --- ImapPeer ----------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[str]:
        if self._capabilities is None:
            self._capabilities = frozenset(c.decode().upper() for c in self._client.capabilities())
        return self._capabilities

    def enable(self, extension: str) -> None:
        self._client.enable(extension)

    def list_folders(self) -> list[RemoteFolder]:
        return [
            RemoteFolder(
                name=name if isinstance(name, str) else name.decode("utf-8", "replace"),
                delimiter=delimiter.decode() if isinstance(delimiter, bytes) else delimiter,
                attributes=frozenset(_text(a) for a in attributes),
            )
            for attributes, delimiter, name in self._client.list_folders()
        ]

    def folder_status(self, folder: str, items: Sequence[StatusItem]) -> dict[StatusItem, int]:
        status = self._client.folder_status(folder, [item.encode() for item in items])
        return {item: int(status[item.encode()]) for item in items if item.encode() in status}

    def select_folder(self, folder: str) -> SelectedFolder:
        selected = self._client.select_folder(folder)
        return _selected(selected)

    def select_readonly(self, folder: str) -> SelectedFolder:
        """EXAMINE: what a push watcher idles on."""
        return _selected(self._client.select_folder(folder, readonly=True))

    def search_uids(self, uid_range: str | None = None) -> list[int]:
        criteria = ["UID", uid_range] if uid_range is not None else ["ALL"]
        return [int(uid) for uid in self._client.search(criteria)]

    def fetch_metadata(self, uid_set: str) -> dict[int, RemoteMessage]:
        return {
            uid: RemoteMessage(
                size=int(data.get(b"RFC822.SIZE", 0)),
                flags=tuple(_text(f) for f in data.get(b"FLAGS", ())),
                internal_date=_aware(data.get(b"INTERNALDATE")),
                message_id=message_id_of(data.get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]")),
            )
            for uid, data in self._uid_fetch(uid_set, _METADATA_ITEMS).items()
        }

    def fetch_bodies(self, uid_set: str) -> dict[int, bytes]:
        fetched = self._uid_fetch(uid_set, "BODY.PEEK[]")
        return {uid: data[b"BODY[]"] for uid, data in fetched.items() if b"BODY[]" in data}

    def fetch_body_chunk(self, uid: int, offset: int, length: int) -> bytes:
        data = self._uid_fetch(str(uid), f"BODY.PEEK[]<{offset}.{length}>").get(uid, {})
        chunk = data.get(f"BODY[]<{offset}>".encode())
        return bytes(chunk) if chunk else b""

    def fetch_flags(
        self, uid_set: str, *, changed_since: int | None = None
    ) -> dict[int, tuple[str, ...]]:
        modifiers = f"CHANGEDSINCE {changed_since}" if changed_since is not None else None
        fetched = self._uid_fetch(uid_set, "FLAGS", modifiers=modifiers)
        return {
            uid: tuple(_text(f) for f in data.get(b"FLAGS", ())) for uid, data in fetched.items()
        }

    def store_flags(self, uid_set: str, action: FlagAction, flags: Iterable[str]) -> None:
        names = " ".join(flags)
        if uid_set and names:
            self._uid_command(
                "STORE",
                b"STORE",
                uid_set.encode(),
                f"{action}.SILENT".encode(),
                f"({names})".encode(),
            )

    def transfer(self, command: TransferCommand, uid_set: str, folder: str) -> CopiedUids | None:
        imap = self._client._imap
        imap.untagged_responses.pop("OK", None)
        data = self._uid_command(
            command, command.encode(), uid_set.encode(), self._client._normalise_folder(folder)
        )
        texts = list(data) + list(imap.untagged_responses.pop("OK", []))
        for text in texts:
            match = _COPYUID.search(text if isinstance(text, bytes) else b"")
            if match:
                pairs = zip(
                    parse_uid_set(match.group(2).decode()),
                    parse_uid_set(match.group(3).decode()),
                    strict=False,
                )
                return CopiedUids(int(match.group(1)), dict(pairs))
        return None

    def expunge_uids(self, uid_set: str) -> None:
        self._uid_command("EXPUNGE", b"EXPUNGE", uid_set.encode())

    def append(
        self, folder: str, content: bytes, *, flags: Sequence[str], internal_date: datetime | None
    ) -> AppendedUid | None:
        response = self._client.append(folder, content, flags=list(flags), msg_time=internal_date)
        match = _APPENDUID.search(response if isinstance(response, bytes) else b"")
        if match is None:
            return None
        return AppendedUid(int(match.group(1)), int(match.group(2)))

    def create_folder(self, folder: str) -> None:
        self._client.create_folder(folder)

    # --- push (RFC 2177 IDLE) ----------------------------------------------------------

    def idle(self) -> None:
        self._client.idle()

    def idle_check(self, timeout: float) -> list[tuple[Any, ...]]:
        responses: list[tuple[Any, ...]] = self._client.idle_check(timeout=timeout)
        return responses

    def idle_done(self) -> list[tuple[Any, ...]]:
        _text_part, responses = self._client.idle_done()
        return list(responses)

    # --- the internals ------------------------------------------------------------------

    def _quiet_protocol_trace(self) -> None:
        """IMAPClient turns imaplib's trace on (level 5) for its logger, and imaplib then
        formats every line it reads — the repr of each message body included — before the
        logger drops it: a third of a first sync's CPU. Keep it only when someone listens."""
        if not logging.getLogger("imapclient").isEnabledFor(logging.DEBUG):
            self._client._imap.debug = 0

    def _uid_fetch(self, uid_set: str, items: str, *, modifiers: str | None = None) -> FetchResult:
        """`UID FETCH <set> (<items>) [(<modifiers>)]`, keyed by UID, parsed fast where the
        response is flat (`fetch_fast.py`) and by IMAPClient's parser otherwise."""
        if not uid_set:
            return {}
        args: list[bytes] = [b"FETCH", uid_set.encode(), f"({items})".encode()]
        if modifiers:
            args.append(f"({modifiers})".encode())
        data = self._uid_command("FETCH", *args)
        fast = parse_flat_fetch(data)
        if fast is not None:
            return fast
        parsed = parse_fetch_response(data, False, True)
        return {int(uid): values for uid, values in parsed.items()}

    def _uid_command(self, name: str, *args: bytes) -> list[Any]:
        """A UID command through imaplib's own connection, so literals and quoting stay its
        business; refusal raises `SyncError`."""
        imap = self._client._imap
        tag = imap._command("UID", *args)
        typ, data = imap._command_complete(name, tag)
        if typ != "OK":
            raise SyncError(
                "protocol", f"UID {name} refused: {server_text(data[0] if data else b'')}"
            )
        if name == "FETCH":
            _typ, data = imap._untagged_response(typ, data, "FETCH")
            return [item for item in data if item is not None]
        return list(data)


def _selected(selected: dict[bytes, Any]) -> SelectedFolder:
    return SelectedFolder(
        uidvalidity=int(selected[b"UIDVALIDITY"]),
        exists=int(selected.get(b"EXISTS", 0)),
        highestmodseq=int(selected.get(b"HIGHESTMODSEQ", 0) or 0),
        permanent_flags=frozenset(_text(p) for p in selected.get(b"PERMANENTFLAGS", ())),
    )


def message_id_of(header_block: object) -> str | None:
    """The Message-ID value from a `HEADER.FIELDS (MESSAGE-ID)` answer, unfolded and
    stripped the way the store's analyser keeps it."""
    if not isinstance(header_block, bytes):
        return None
    unfolded = re.sub(rb"\r?\n[ \t]", b" ", header_block)
    for line in unfolded.splitlines():
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            text = value.strip().decode("utf-8", "replace")
            return text or None
    return None


def _unrepr(text: str) -> bytes | str:
    """`b'…'` (a bytes repr inside a message) back to the bytes it shows; other text as is."""
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(text)
            if isinstance(value, bytes):
                return value
    return text


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
