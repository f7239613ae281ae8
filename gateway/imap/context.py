"""What every IMAP session of one server shares: store, settings, thread pool, hubs, limits."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from gateway.auth_throttle import AuthThrottle
from gateway.connection_limits import ConnectionLimits
from gateway.imap.change_hub import ChangeHub
from gateway.imap.recent import RecentTracker
from gateway.imap.search_limits import SearchSlots
from gateway.imap.snapshot_cache import SnapshotCache
from gateway.settings import Settings
from gateway.store import MailStore
from gateway.store.mailboxes import MailboxLimits

T = TypeVar("T")


@dataclass
class ServerContext:
    store: MailStore
    settings: Settings
    executor: ThreadPoolExecutor
    hub: ChangeHub
    tls_context: ssl.SSLContext | None
    throttle: AuthThrottle
    search_slots: SearchSlots
    recent: RecentTracker = field(default_factory=RecentTracker)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    # Told (command name, seconds) after each command: the /metrics latency histogram.
    command_observer: Callable[[str, float], None] | None = None

    @property
    def mailbox_limits(self) -> MailboxLimits:
        settings = self.settings
        return MailboxLimits(
            max_mailboxes=settings.max_mailboxes_per_user,
            max_depth=settings.max_mailbox_depth,
            max_name_length=settings.max_mailbox_name_length,
        )

    async def call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking store work on the I/O thread pool (the event loop never blocks)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(function, *args, **kwargs))
