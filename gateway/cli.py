"""The `gateway` command: serve, manage users and sources, sync, export and import.

Thin by design: every command parses arguments, calls store or service operations, prints.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.fetch.source_options import InvalidSourceOptionError, validate_source_options
from gateway.logging_setup import configure_logging
from gateway.settings import Settings
from gateway.store import MailStore, StoreError, open_store

app = typer.Typer(
    help="Self-hosted mail aggregation gateway. Settings come from GATEWAY_* variables or .env.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Manage users (the people who log in).", no_args_is_help=True)
source_app = typer.Typer(help="Manage external POP3/IMAP accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(source_app, name="source")


# Options the sync engines read (gateway/fetch); anything else is refused as a typo.
class Protocol(StrEnum):
    imap = "imap"
    pop3 = "pop3"


class Security(StrEnum):
    tls = "tls"
    starttls = "starttls"
    none = "none"


class ExportFormat(StrEnum):
    maildir = "maildir"
    mbox = "mbox"


@contextmanager
def _store() -> Iterator[MailStore]:
    settings = Settings()
    configure_logging(settings.log_level)
    store = open_store(settings)
    try:
        yield store
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    finally:
        store.close()


def _parse_options(protocol: str, pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs; JSON values (numbers, true/false) keep their type, others are text.

    Checked before anything is stored, so a typo never leaves a source that cannot sync.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            typer.echo(f"error: --option expects KEY=VALUE, got {pair!r}", err=True)
            raise typer.Exit(2)
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    try:
        validate_source_options(protocol, options)
    except InvalidSourceOptionError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    return options


def _read_secret(prompt: str) -> str:
    """A password from the terminal (asked twice) or the first line of stdin for scripts."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"{prompt}: ")
        if getpass.getpass(f"{prompt} (again): ") != first:
            typer.echo("error: the passwords differ", err=True)
            raise typer.Exit(1)
        return first
    secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        typer.echo("error: expected the password on standard input", err=True)
        raise typer.Exit(1)
    return secret


@app.command()
def serve() -> None:
    """Start every part of the gateway (admin, and IMAP/SMTP/fetch as they exist) and run."""
    from gateway.memory_tuning import limit_malloc_arenas
    from gateway.server import serve as run_server

    limit_malloc_arenas()  # before any thread exists
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run_server(settings))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema, then exit."""
    with _store():
        typer.echo("database schema is up to date")


@app.command()
def gc(
    grace: Annotated[
        float, typer.Option(help="Keep unreferenced blobs younger than this (s).")
    ] = 3600,
) -> None:
    """Delete message files no mailbox refers to any more."""
    with _store() as store:
        typer.echo(f"removed {store.collect_garbage(grace_seconds=grace)} unreferenced files")


@app.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt stored source secrets under the first key of GATEWAY_SECRET_KEY
    ("NEW,OLD" during a rotation), after which OLD may be removed."""
    with _store() as store:
        typer.echo(f"re-encrypted {store.rotate_source_secrets()} source secrets")


@app.command()
def index() -> None:
    """Decode the search text of fetched mail now (what `gateway serve` does in the
    background), then exit: for setups that run `gateway sync` from cron."""
    with _store() as store:
        indexed = store.index_all_search_text()
        typer.echo(f"indexed the search text of {indexed} messages")


@user_app.command("add")
def user_add(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="May use the admin panel.")] = False,
) -> None:
    """Create a user; the password is read from stdin (or asked for on a terminal)."""
    password = _read_secret("Password")
    with _store() as store:
        user = store.create_user(name=name, password=password, is_admin=admin)
        typer.echo(f"created user {user.name}{' (admin)' if user.is_admin else ''}")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    with _store() as store:
        for user in store.list_users():
            typer.echo(
                f"{user.name}\t{'admin' if user.is_admin else 'user'}\t{user.created_at:%Y-%m-%d}"
            )


@user_app.command("passwd")
def user_passwd(name: str) -> None:
    """Set a user's password, read from stdin (or asked for on a terminal)."""
    password = _read_secret("New password")
    with _store() as store:
        store.set_user_password(name=name, password=password)
        typer.echo(f"password changed for {name}")


@source_app.command("add")
def source_add(
    user: Annotated[str, typer.Option(help="Owner of the source.")],
    name: Annotated[str, typer.Option(help="Short name, unique per user (e.g. 'work').")],
    protocol: Annotated[Protocol, typer.Option(help="imap or pop3.")],
    host: Annotated[str, typer.Option(help="Server host name.")],
    port: Annotated[int, typer.Option(help="Server port (993/143 IMAP, 995/110 POP3).")],
    security: Annotated[Security, typer.Option(help="tls, starttls or none.")],
    username: Annotated[str, typer.Option(help="Login name at the source.")],
    interval: Annotated[int, typer.Option(help="Seconds between polls (min 10).")] = 60,
    option: Annotated[
        list[str] | None,
        typer.Option(
            help="Source option KEY=VALUE, repeatable. Both: allow_plaintext=true, "
            "timeout_seconds=N, tls_ca_file=PATH, tls_fingerprint_sha256=HEX, "
            "daily_budget_mb=N (0: no limit). POP3: retention=keep|delete_after_download|"
            'delete_after_days, retention_days=N. IMAP: folders=\'["INBOX","Work"]\', '
            "delete_policy=trash|expunge|keep, move_policy=follow|keep, push=false, "
            "max_connections=N."
        ),
    ] = None,
) -> None:
    """Add an external account; its password is read from stdin and stored encrypted."""
    options = _parse_options(protocol.value, option or [])
    secret = _read_secret("Source password")
    with _store() as store:
        owner = store.get_user(name=user)
        source = store.add_source(
            user_id=owner.id,
            name=name,
            protocol=protocol.value,
            host=host,
            port=port,
            security=security.value,
            username=username,
            secret=secret,
            poll_interval=interval,
            options=options,
        )
        typer.echo(
            f"added source {user}/{source.name} ({source.protocol}://{source.host}:{source.port})"
        )


@source_app.command("list")
def source_list(
    user: Annotated[str | None, typer.Option(help="Only this user's sources.")] = None,
) -> None:
    """List sources with their sync state (never their secrets)."""
    with _store() as store:
        owners = {u.id: u.name for u in store.list_users()}
        user_id = store.get_user(name=user).id if user else None
        for source in store.list_sources(user_id=user_id):
            state = source.last_error_class or ("ok" if source.last_success_at else "never synced")
            if source.last_error_class:
                state += f" ({source.consecutive_failures}x: {source.last_error})"
            next_run = f"{source.next_run_at:%Y-%m-%d %H:%M:%S}Z" if source.next_run_at else "-"
            typer.echo(
                f"{owners.get(source.user_id, '?')}/{source.name}\t{source.protocol}\t"
                f"{source.security}://{source.host}:{source.port}\t{source.username}\t"
                f"every {source.poll_interval}s\t{state}\tnext {next_run}\t"
                f"{source.messages_fetched} msgs/{source.bytes_fetched} B"
            )


@source_app.command("remove")
def source_remove(
    user: Annotated[str, typer.Option(help="Owner of the source.")],
    name: Annotated[str, typer.Option(help="Name of the source.")],
) -> None:
    """Remove a source; mail already fetched from it stays."""
    with _store() as store:
        store.remove_source(source_id=store.get_source(user_name=user, name=name).id)
        typer.echo(f"removed source {user}/{name}")


@app.command()
def sync(
    user: Annotated[str | None, typer.Option(help="Only this user's sources.")] = None,
    source: Annotated[str | None, typer.Option(help="Only the source with this name.")] = None,
) -> None:
    """Run one sync pass over the selected sources now, then exit (non-zero on any failure)."""
    from gateway.sync_pass import run_sync_pass

    with _store() as store:
        failures = run_sync_pass(store, user_name=user, source_name=source)
    raise typer.Exit(1 if failures else 0)


@app.command("export")
def export_command(
    user: Annotated[str, typer.Option(help="Whose mail to export.")],
    directory: Annotated[Path, typer.Argument(help="Target directory (created if missing).")],
    format: Annotated[
        ExportFormat, typer.Option("--format", help="maildir or mbox.")
    ] = ExportFormat.maildir,
) -> None:
    """Back up a user's mailboxes (Maildir is lossless; mbox is for other tools)."""
    from gateway.backup import export_maildir, export_mbox

    with _store() as store:
        owner = store.get_user(name=user)
        directory.mkdir(parents=True, exist_ok=True)
        exporter = export_maildir if format is ExportFormat.maildir else export_mbox
        count = exporter(store, user_id=owner.id, directory=directory)
        typer.echo(f"exported {count} messages to {directory}")


@app.command("import")
def import_command(
    user: Annotated[str, typer.Option(help="Whose mailboxes receive the mail.")],
    path: Annotated[Path, typer.Argument(help="A Maildir tree, an mbox file or a folder of them.")],
    mailbox: Annotated[
        str | None, typer.Option(help="Target mailbox for a single mbox/Maildir.")
    ] = None,
) -> None:
    """Restore or import mail into a user's mailboxes."""
    from gateway.backup import import_path

    with _store() as store:
        owner = store.get_user(name=user)
        count = import_path(store, user_id=owner.id, path=path, mailbox_name=mailbox)
        typer.echo(f"imported {count} messages from {path}")


def main() -> None:
    app()
