"""`gateway sync`: one pass over the selected sources, for scripts and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gateway.fetch.errors import SyncError
from gateway.fetch.runner import sync_source_once
from gateway.progress import NoProgress, ProgressReporter
from gateway.store import MailStore, SourceInfo

log = logging.getLogger("gateway.sync")

SyncEngine = Callable[[MailStore, SourceInfo], None]

SYNC_ENGINES: dict[str, SyncEngine] = {"pop3": sync_source_once, "imap": sync_source_once}


def run_sync_pass(
    store: MailStore,
    *,
    user_name: str | None,
    source_name: str | None,
    progress: ProgressReporter | None = None,
) -> int:
    """Sync every matching source once; returns how many failed or could not run.

    `progress` advances per source done, labelled with its name."""
    progress = progress or NoProgress()
    user_id = store.get_user(name=user_name).id if user_name else None
    sources = [
        source
        for source in store.list_sources(user_id=user_id)
        if source_name is None or source.name == source_name
    ]
    if not sources:
        log.warning("event=sync_nothing_to_do user=%s source=%s", user_name, source_name)
    progress.set_total(len(sources))
    failures = 0
    for source in sources:
        try:
            failures += _sync_one(store, source)
        finally:
            progress.advance(label=source.name)
    return failures


def _sync_one(store: MailStore, source: SourceInfo) -> int:
    """1 if the source failed or could not run, else 0."""
    if source.credentials_rejected:
        log.error(
            "event=sync_skipped source=%s source_id=%d reason=credentials_rejected detail=%s",
            source.label,
            source.id,
            "set a new password with gateway source passwd",
        )
        return 1
    engine = SYNC_ENGINES.get(source.protocol)
    if engine is None:
        log.error(
            "event=sync_unavailable source=%s source_id=%d protocol=%s reason=engine_not_built_yet",
            source.label,
            source.id,
            source.protocol,
        )
        return 1
    try:
        engine(store, source)
    except SyncError as error:
        # Already recorded on the source and logged with its class by the engine.
        log.error(
            "event=sync_failed source=%s source_id=%d error_class=%s",
            source.label,
            source.id,
            error.error_class,
        )
        return 1
    except Exception:
        log.exception("event=sync_failed source=%s source_id=%d", source.label, source.id)
        return 1
    return 0
