"""What every IMAP session of one server shares: store, settings, thread pool, hubs, limits."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from gateway.imap.change_hub import ChangeHub
from gateway.imap.limits import AuthThrottle, ConnectionLimits
from gateway.imap.recent import RecentTracker
from gateway.imap.snapshot_cache import SnapshotCache
from gateway.settings import Settings
from gateway.store import MailStore

T = TypeVar("T")


@dataclass
class ServerContext:
    store: MailStore
    settings: Settings
    executor: ThreadPoolExecutor
    hub: ChangeHub
    tls_context: ssl.SSLContext | None
    recent: RecentTracker = field(default_factory=RecentTracker)
    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    # Told (command name, seconds) after each command: the /metrics latency histogram.
    command_observer: Callable[[str, float], None] | None = None

    async def call(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking store work on the I/O thread pool (the event loop never blocks)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(function, *args, **kwargs))
