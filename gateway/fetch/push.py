"""IMAP push: one IDLE connection per source that offers it, saying when to sync that source.

A watcher never fetches mail. Whatever the server announces while we idle on INBOX (RFC 2177:
EXISTS, EXPUNGE, FETCH) only calls `on_activity(source_id)`, which the scheduler turns into a
coalesced sync. Polling stays the safety net: a source without IDLE, or whose watcher is
between reconnects, is still synced on its interval.

Each watcher is a daemon thread blocked in `idle_check`. Stopping shuts its socket down from the
stopping thread, which wakes that poll at once, so `stop()` does not wait for a timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.fetch.connections import PasswordAuthenticator
from gateway.fetch.errors import SyncError, classify_error, server_text
from gateway.fetch.imap_client import ImapClientPeer
from gateway.fetch.imap_connection import open_imap
from gateway.store import MailStore, SourceInfo

log = logging.getLogger("gateway.fetch")

OpenClient = Callable[[SourceInfo], ImapClientPeer]
# RFC 3501 §7.3.1 / §7.4.1 / §7.4.2: new mail, removed mail, changed flags.
ACTIVITY_RESPONSES = frozenset({b"EXISTS", b"EXPUNGE", b"FETCH"})
# `idle_check` returning nothing this much before its timeout means the socket was readable
# without a whole response: almost always EOF.
_EARLY_RETURN_MARGIN = 0.05


@dataclass(frozen=True)
class PushTiming:
    """How watchers pace themselves; tests shrink these."""

    # RFC 2177 §3: a server may drop an IDLE after 30 minutes, so re-issue it well before.
    refresh_seconds: float = 25 * 60
    backoff_initial_seconds: float = 5.0
    backoff_cap_seconds: float = 300.0
    # A connection that stayed up this long resets the backoff; one that dies at once does not,
    # so a server that accepts and then drops us is not hammered.
    stable_seconds: float = 60.0
    stop_timeout_seconds: float = 2.0
    auth_retry_seconds: float = 30 * 60


def wants_push(source: SourceInfo) -> bool:
    """Enabled IMAP sources watch for push unless their option `push` is false, or their
    connection cap (`max_connections`, default 2) leaves room for the sync alone."""
    return (
        source.enabled
        and not source.credentials_rejected
        and source.protocol == "imap"
        and source.options.get("push") is not False
        and source.options.get("max_connections", 2) >= 2
    )


class PushWatchers:
    """The set of IDLE watchers; `sync_sources` adds and retires them as sources change."""

    def __init__(
        self,
        store: MailStore,
        *,
        on_activity: Callable[[int], None],
        timing: PushTiming | None = None,
        open_client: OpenClient | None = None,
    ) -> None:
        self._store = store
        self._on_activity = on_activity
        self._timing = timing or PushTiming()
        self._open_client = open_client or self._open_with_password
        self._watchers: dict[int, _SourceWatcher] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def sync_sources(self, sources: Sequence[SourceInfo] | None = None) -> None:
        """Watch every push source in `sources` (default: the store's), retire the others.

        A watcher is restarted when the source's connection settings change. One that gave up
        because the server lacks IDLE stays given up until they do.
        """
        if sources is None:
            sources = self._store.list_sources()
        wanted = {source.id: source for source in sources if wants_push(source)}
        retired: list[_SourceWatcher] = []
        with self._lock:
            if self._stopped:
                return
            for source_id, watcher in list(self._watchers.items()):
                source = wanted.get(source_id)
                if source is None or watcher.connection_key != connection_key(source):
                    retired.append(self._watchers.pop(source_id))
            for source_id, source in wanted.items():
                if source_id not in self._watchers:
                    watcher = _SourceWatcher(
                        source,
                        open_client=self._open_client,
                        on_activity=self._on_activity,
                        timing=self._timing,
                    )
                    self._watchers[source_id] = watcher
                    watcher.start()
        _stop_watchers(retired, self._timing.stop_timeout_seconds)

    def is_idling(self, source_id: int) -> bool:
        """Whether the source's watcher is in IDLE now: from here on, new mail is heard."""
        with self._lock:
            watcher = self._watchers.get(source_id)
        return watcher is not None and watcher.idling.is_set()

    def watching(self) -> set[int]:
        """Ids of the sources whose watcher thread is alive (connected or reconnecting)."""
        with self._lock:
            return {source_id for source_id, w in self._watchers.items() if w.is_alive()}

    def stop(self) -> None:
        """Stop every watcher; returns within about `stop_timeout_seconds`."""
        with self._lock:
            self._stopped = True
            watchers = list(self._watchers.values())
            self._watchers.clear()
        _stop_watchers(watchers, self._timing.stop_timeout_seconds)

    def _open_with_password(self, source: SourceInfo) -> ImapClientPeer:
        secret = self._store.read_source_secret(source_id=source.id)
        return open_imap(source, PasswordAuthenticator(secret))


def connection_key(source: SourceInfo) -> tuple[Any, ...]:
    """What a watcher's connection depends on; a change means reconnecting at once, which
    also ends the long wait after a refused login when the password is changed."""
    options = json.dumps(source.options, sort_keys=True, default=str)
    return (
        source.host,
        source.port,
        source.security,
        source.username,
        options,
        source.credentials_tag,
    )


def _stop_watchers(watchers: Sequence[_SourceWatcher], timeout: float) -> None:
    for watcher in watchers:
        watcher.request_stop()
    deadline = time.monotonic() + timeout
    for watcher in watchers:
        watcher.join(max(0.0, deadline - time.monotonic()))
        if watcher.is_alive():
            # Daemon thread, most likely inside a connect; it ends when that returns.
            log.warning("event=push_stop_slow source=%s", watcher.label)


class _SourceWatcher:
    """One source's IDLE loop in its own thread, reconnecting with backoff until stopped."""

    def __init__(
        self,
        source: SourceInfo,
        *,
        open_client: OpenClient,
        on_activity: Callable[[int], None],
        timing: PushTiming,
    ) -> None:
        self.source_id = source.id
        self.label = source.label
        self.connection_key = connection_key(source)
        self._source = source
        self._open_client = open_client
        self._on_activity = on_activity
        self._timing = timing
        self._stopping = threading.Event()
        self.idling = threading.Event()
        self._client_lock = threading.Lock()
        self._client: ImapClientPeer | None = None
        self._connected_at: float | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"imap-push-{source.id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def request_stop(self) -> None:
        """Ask the thread to end, and wake it if it is blocked on its connection."""
        self._stopping.set()
        with self._client_lock:
            if self._client is not None:
                self._client.shutdown_socket()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._connected_at = None
            self.idling.clear()
            try:
                if not self._watch_once():
                    return
            except Exception as error:  # every failure means: log it, back off, reconnect
                if self._stopping.is_set():
                    return
                if self._stayed_up():
                    failures = 0
                delay = min(
                    self._timing.backoff_cap_seconds,
                    self._timing.backoff_initial_seconds * 2 ** min(failures, 16),
                )
                if classify_error(error).error_class == "auth":
                    # A refused login is not retried every few seconds (providers lock such
                    # accounts); the scheduled syncs decide when the source stops.
                    delay = max(delay, self._timing.auth_retry_seconds)
                failures += 1
                self._log_failure(error, delay)
                if self._stopping.wait(delay):
                    return

    def _watch_once(self) -> bool:
        """Connect and idle until stopped (False) or IDLE is unavailable (False); raises on
        any failure of the connection."""
        client = self._open_client(self._source)
        with self._client_lock:
            if not self._stopping.is_set():
                self._client = client
        try:
            keep_watching = not self._stopping.is_set() and self._watch(client)
        except BaseException:
            # The session is broken or in an unknown state: a LOGOUT could wait out the whole
            # network timeout (a server shutting down sends BYE and then stops answering).
            self._detach()
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        self._detach()
        client.close()
        return keep_watching

    def _detach(self) -> None:
        with self._client_lock:
            self._client = None

    def _watch(self, client: ImapClientPeer) -> bool:
        if not client.has_capability("IDLE"):
            log.warning(
                "event=push_unavailable source=%s reason=no_idle_capability detail=%s",
                self.label,
                "polling only",
            )
            return False
        client.select_readonly("INBOX")
        self._connected_at = time.monotonic()
        log.info("event=push_watching source=%s folder=INBOX", self.label)
        # Mail may have arrived while we were not connected.
        self._report_activity("connected")
        self._idle(client)
        return False

    def _idle(self, client: ImapClientPeer) -> None:
        client.idle()
        self.idling.set()
        renew_at = time.monotonic() + self._timing.refresh_seconds
        while not self._stopping.is_set():
            remaining = renew_at - time.monotonic()
            if remaining <= 0:
                self._renew_idle(client)
                renew_at = time.monotonic() + self._timing.refresh_seconds
                continue
            started = time.monotonic()
            responses = client.idle_check(timeout=remaining)
            if self._stopping.is_set():
                return
            if not responses and time.monotonic() - started < remaining - _EARLY_RETURN_MARGIN:
                # imapclient swallows EOF inside idle_check; ending the IDLE either proves the
                # connection alive or raises, instead of polling a dead socket in a tight loop.
                self._renew_idle(client)
                renew_at = time.monotonic() + self._timing.refresh_seconds
                continue
            self._handle_responses(responses)

    def _renew_idle(self, client: ImapClientPeer) -> None:
        """DONE, then IDLE again (RFC 2177 §3); responses that came with DONE still count."""
        responses = client.idle_done()
        self._handle_responses(responses)
        client.idle()

    def _handle_responses(self, responses: Sequence[tuple[Any, ...]]) -> None:
        if any(len(r) >= 2 and r[1] in ACTIVITY_RESPONSES for r in responses):
            self._report_activity("idle")
        for response in responses:
            if response and response[0] == b"BYE":
                text = b" ".join(part for part in response[1:] if isinstance(part, bytes))
                raise SyncError("connect", f"server ended the session: {server_text(text)}")

    def _report_activity(self, cause: str) -> None:
        log.info("event=push_activity source=%s cause=%s", self.label, cause)
        try:
            self._on_activity(self.source_id)
        except Exception:
            log.exception("event=push_callback_failed source=%s", self.label)

    def _stayed_up(self) -> bool:
        connected_at = self._connected_at
        return (
            connected_at is not None
            and time.monotonic() - connected_at >= self._timing.stable_seconds
        )

    def _log_failure(self, error: Exception, delay: float) -> None:
        failure = classify_error(error)
        log.warning(
            "event=push_disconnected source=%s error_class=%s message=%r retry_seconds=%.1f",
            self.label,
            failure.error_class,
            failure.message,
            delay,
        )
