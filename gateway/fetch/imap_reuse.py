"""Logged-in IMAP connections kept between one source's syncs.

With push, every new message at a source starts a sync, and a poll starts one a minute: opening
a connection each time costs a TCP and TLS handshake and a LOGIN (the slowest step on large
providers, and one they count: Gmail refuses accounts that log in too often). The scheduler
therefore hands a finished sync's connection back here and the next sync of the same source
takes it, after a NOOP proves it alive. A connection idle for longer than `max_idle_seconds`,
or one whose source settings changed, is logged out instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from gateway.fetch.errors import classify_error
from gateway.fetch.imap_client import ImapClientPeer
from gateway.store import SourceInfo

log = logging.getLogger("gateway.fetch")

# Well under the 30-minute autologout servers may apply (RFC 3501 §5.4).
DEFAULT_MAX_IDLE_SECONDS = 600.0


def _settings_key(source: SourceInfo) -> tuple[object, ...]:
    """What the connection was opened with; any change means a new connection."""
    return (
        source.host,
        source.port,
        source.security,
        source.username,
        tuple(sorted((k, repr(v)) for k, v in source.options.items())),
    )


@dataclass
class _Kept:
    client: ImapClientPeer
    settings: tuple[object, ...]
    since: float


class ImapConnectionCache:
    """One idle, logged-in connection per source, at most; thread-safe."""

    def __init__(self, *, max_idle_seconds: float = DEFAULT_MAX_IDLE_SECONDS) -> None:
        self._max_idle = max_idle_seconds
        self._kept: dict[int, _Kept] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, source: SourceInfo) -> ImapClientPeer | None:
        """The source's kept connection if it still answers, else None (open a new one)."""
        with self._lock:
            kept = self._kept.pop(source.id, None)
        if kept is None:
            return None
        if kept.settings != _settings_key(source) or (
            time.monotonic() - kept.since > self._max_idle
        ):
            kept.client.close()
            return None
        try:
            kept.client.noop()
        except Exception as error:
            # The classified message: a server's reply is cut and sanitised before logging.
            log.info(
                "event=imap_connection_stale source=%s source_id=%d error=%r",
                source.label,
                source.id,
                classify_error(error).message,
            )
            with contextlib.suppress(Exception):
                kept.client.shutdown()
            return None
        # Unsolicited responses of the idle time (EXISTS, FETCH) are not ours to keep.
        kept.client.discard_unsolicited()
        return kept.client

    def keep(self, source: SourceInfo, client: ImapClientPeer) -> None:
        """Hold `client` for the source's next sync (after a sync that succeeded)."""
        stale: ImapClientPeer | None = client  # when closed, the new one goes at once
        with self._lock:
            if not self._closed:
                previous = self._kept.pop(source.id, None)
                stale = previous.client if previous is not None else None
                self._kept[source.id] = _Kept(client, _settings_key(source), time.monotonic())
        if stale is not None:
            stale.close()

    def retain(self, source_ids: Collection[int]) -> None:
        """Log out the kept connections of sources not in `source_ids` (removed, disabled)."""
        with self._lock:
            gone = [self._kept.pop(i) for i in list(self._kept) if i not in source_ids]
        for entry in gone:
            entry.client.close()

    def close_all(self) -> None:
        """Log every kept connection out; later `keep` calls close at once."""
        with self._lock:
            self._closed = True
            kept, self._kept = list(self._kept.values()), {}
        for entry in kept:
            entry.client.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)
