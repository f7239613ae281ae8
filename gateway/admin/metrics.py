"""Prometheus metrics (`/metrics`), on a registry of their own (no process-wide globals).

Counters and histograms are fed as things happen (finished syncs through the store's sync
listener, IMAP commands through the server's observer); gauges that describe state (sources by
state, store size, outbound queue depth, IMAP sessions) are read when Prometheus scrapes.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.admin.source_status import SourceState, source_state
from gateway.store import MailStore, SyncRunInfo
from gateway.store.outbound_counts import DEPTH_STATES, QueueState

SYNC_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
IMAP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
# Sources by state, the store size and the queue depth cost SQL: read them at most this often.
STATE_CACHE_SECONDS = 5.0


class GatewayMetrics:
    """Every metric the gateway exports; hook `observe_sync` / `observe_imap_command` up."""

    def __init__(self, store: MailStore) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sync_seconds = Histogram(
            "gateway_sync_duration_seconds",
            "Time one sync of one source took.",
            ["protocol"],
            buckets=SYNC_BUCKETS,
            registry=self.registry,
        )
        self.sync_errors = Counter(
            "gateway_sync_errors",
            "Failed syncs by error class.",
            ["error_class"],
            registry=self.registry,
        )
        self.fetched_messages = Counter(
            "gateway_fetched_messages", "Messages fetched from sources.", registry=self.registry
        )
        self.fetched_bytes = Counter(
            "gateway_fetched_bytes", "Bytes fetched from sources.", registry=self.registry
        )
        self.imap_command_seconds = Histogram(
            "gateway_imap_command_seconds",
            "Time our IMAP server took per command.",
            ["command"],
            buckets=IMAP_BUCKETS,
            registry=self.registry,
        )
        self._store = store
        self._protocols: dict[int, str] = {}
        self._state = _StateCollector(store)
        self.registry.register(self._state)
        store.add_sync_listener(self.observe_sync)

    def watch_imap_sessions(self, count: Callable[[], int]) -> None:
        """Report `count()` as the number of logged-in IMAP sessions."""
        self._state.imap_sessions = count

    def observe_sync(self, run: SyncRunInfo) -> None:
        """Store sync listener: one finished sync."""
        protocol = self._protocols.get(run.source_id)
        if protocol is None:
            protocol = self._protocol_of(run.source_id)
        self.sync_seconds.labels(protocol).observe(run.seconds)
        self.fetched_messages.inc(run.fetched)
        self.fetched_bytes.inc(run.bytes)
        if run.error_class is not None:
            self.sync_errors.labels(run.error_class).inc()

    def observe_imap_command(self, command: str, seconds: float) -> None:
        self.imap_command_seconds.labels(command).observe(seconds)

    def _protocol_of(self, source_id: int) -> str:
        for source in self._store.list_sources():
            self._protocols[source.id] = source.protocol
        return self._protocols.get(source_id, "unknown")


class _StateCollector(Collector):
    """Gauges read at scrape time, cached for a few seconds."""

    def __init__(self, store: MailStore) -> None:
        self._store = store
        self.imap_sessions: Callable[[], int] | None = None
        self._cached: tuple[float, Tally[SourceState], int, dict[QueueState, int]] | None = None

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > STATE_CACHE_SECONDS:
            at = datetime.now(UTC)
            states = Tally(source_state(s, now=at) for s in self._store.list_sources())
            self._cached = (
                now,
                states,
                self._store.stored_message_bytes(),
                self._store.count_outbound_by_state(),
            )
        _, states, size, queue = self._cached
        by_state = GaugeMetricFamily("gateway_sources", "Sources by sync state.", labels=["state"])
        for state in get_args(SourceState):
            by_state.add_metric([state], states.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "gateway_store_message_bytes", "Bytes of stored messages.", value=size
        )
        depth = GaugeMetricFamily(
            "gateway_outbound_queue_depth",
            "Outbound messages not yet settled, by state (deferred: a try failed).",
            labels=["state"],
        )
        for queue_state in DEPTH_STATES:
            depth.add_metric([queue_state], queue[queue_state])
        yield depth
        if self.imap_sessions is not None:
            yield GaugeMetricFamily(
                "gateway_imap_sessions",
                "Logged-in IMAP sessions.",
                value=self.imap_sessions(),
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())
