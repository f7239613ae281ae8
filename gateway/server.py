"""`gateway serve`: start every part that exists in one process and run until signalled."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from functools import partial
from pathlib import Path

import uvicorn

from gateway.admin.app import create_app
from gateway.admin.metrics import GatewayMetrics
from gateway.bootstrap import create_first_admin
from gateway.fetch.push import PushWatchers
from gateway.fetch.scheduler import FetchScheduler
from gateway.imap.server import ImapServer
from gateway.memory_tuning import HeapTrimmer, tune_garbage_collector
from gateway.search_indexer import SearchIndexer
from gateway.settings import Settings
from gateway.smtp.server import SmtpService
from gateway.store import MailStore, open_store
from gateway.tls import ensure_certificate, server_context

log = logging.getLogger("gateway.server")


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; opening the store also migrates it."""
    store = await asyncio.to_thread(open_store, settings)
    cert, key = await asyncio.to_thread(ensure_certificate, settings)
    first_admin = await asyncio.to_thread(
        partial(create_first_admin, store, password=settings.first_admin_password)
    )
    if first_admin is not None and not settings.first_admin_password:
        user, password = first_admin
        # Printed once, to the terminal only: it is never logged or stored in clear.
        print(
            f"\nFirst start: created admin user '{user.name}' with password: {password}\n"
            "Change it with `gateway user passwd admin`. This is shown only once.\n"
            + next_steps(settings, cert),
            file=sys.stdout,
            flush=True,
        )
    if settings.allow_plaintext:
        log.warning(
            "event=plaintext_auth_enabled detail=%s",
            "GATEWAY_ALLOW_PLAINTEXT=1: clients may authenticate without TLS; local testing only",
        )
    log.info(
        "event=started data_dir=%s database=%s tls_cert=%s",
        settings.data_dir,
        settings.resolved_database_url().split("://")[0],
        cert,
    )
    metrics = GatewayMetrics(store)
    imap = ImapServer(
        store,
        settings,
        server_context(cert, key),
        command_observer=metrics.observe_imap_command,
    )
    metrics.watch_imap_sessions(imap.session_count)
    await imap.start(starttls_port=settings.imap_port or None, tls_port=settings.imaps_port or None)
    smtp = SmtpService(store, settings, server_context(cert, key))
    await smtp.start(
        submission_port=settings.submission_port or None, smtps_port=settings.smtps_port or None
    )
    indexer = SearchIndexer(store)
    await indexer.start()
    fetching = await start_fetching(store, settings)
    tune_garbage_collector()  # after start-up built what lives as long as the process
    trimmer = HeapTrimmer()
    trimmer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tasks: list[asyncio.Task[None]] = []
    if settings.admin_port:
        config = uvicorn.Config(
            create_app(store, settings, scheduler=fetching, metrics=metrics),
            host=settings.bind,
            port=settings.admin_port,
            log_level=settings.log_level.lower(),
            lifespan="off",
        )
        admin = uvicorn.Server(config)
        tasks.append(asyncio.create_task(admin.serve()))
        log.info(
            "event=listening part=admin address=http://%s:%d", settings.bind, settings.admin_port
        )
    await stop.wait()
    log.info("event=stopping")
    if settings.admin_port:
        admin.should_exit = True
    await imap.stop()
    await smtp.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    if fetching is not None:
        await fetching.stop()
    await indexer.stop()
    await trimmer.stop()
    store.close()


async def start_fetching(store: MailStore, settings: Settings) -> FetchScheduler | None:
    """The scheduler, with IMAP push watchers asking it for syncs; None when fetching is off."""
    if not settings.fetch_enabled:
        log.info("event=fetch_disabled detail=%s", "GATEWAY_FETCH_ENABLED=0")
        return None
    scheduler = FetchScheduler(
        store,
        concurrency=settings.fetch_concurrency,
        rescan_seconds=settings.fetch_rescan_seconds,
    )
    scheduler.attach_watchers(
        PushWatchers(store, on_activity=partial(scheduler.request_sync, reason="push"))
    )
    await scheduler.start()
    return scheduler


def next_steps(settings: Settings, cert: Path) -> str:
    """What a person does after the first start, with the commands as they must type them."""
    script = Path(sys.executable).parent / "gateway"
    command = str(script) if script.exists() else f"{sys.executable} -m gateway"
    host = "localhost" if settings.bind in ("127.0.0.1", "::1") else settings.bind
    lines = [
        "Next steps (in another terminal, from this directory):",
        f"  1. add a user:    {command} user add alice",
        f"  2. add a source:  {command} source add --user alice --name work --protocol imap \\",
        "                       --host imap.example.org --port 993 --security tls \\",
        "                       --username alice@example.org",
        "  3. point a mail client at this gateway:",
    ]
    if settings.imaps_port:
        lines.append(f"       IMAP over TLS: {host} port {settings.imaps_port}")
    if settings.imap_port:
        lines.append(f"       IMAP with STARTTLS: {host} port {settings.imap_port}")
    if settings.submission_port:
        lines.append(f"       sending, SMTP with STARTTLS: {host} port {settings.submission_port}")
    if settings.smtps_port:
        lines.append(f"       sending, SMTP over TLS: {host} port {settings.smtps_port}")
    lines.append(f"       certificate to trust: {cert}")
    if settings.admin_port:
        lines.append(
            f"  Or do all of this in the web panel: http://{host}:{settings.admin_port}/"
            " (log in as admin)"
        )
    lines.append(f"  `{command} --help` lists every command.")
    return "\n".join(lines) + "\n"
