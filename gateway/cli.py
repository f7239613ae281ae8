"""The `gateway` command: serve, manage users and sources, sync, export and import.

Thin by design: every command parses arguments, calls store or service operations, prints.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli_options import parse_option_pairs
from gateway.logging_setup import configure_logging
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.store import MailStore, SourceInfo
    from gateway.store.listing import Listings

# Imports of the store (SQLAlchemy, SQLModel) and of the fetch engines happen inside the
# commands that need them: `gateway user list` must start well under half a second.

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
def _store(*, create: bool = False) -> Iterator[MailStore]:
    """The store of the configured data directory; only `create=True` (migrate) may make one:
    anything else run from the wrong directory must say where it looked, not start afresh."""
    from gateway.store import open_store

    settings = Settings()
    configure_logging(settings.log_level)
    if not create:
        _require_data_dir(settings)
    store = open_store(settings)
    try:
        with _store_errors_reported():
            yield store
    finally:
        store.close()


@contextmanager
def _listings() -> Iterator[Listings]:
    """For `user`, `source` and `identity list`: the database read through its own driver,
    without importing SQLAlchemy (issue 16: start-up well under 0.5 s); the full store when
    the database is missing or needs migrating."""
    from gateway.store.listing import open_listing_reader

    settings = Settings()
    configure_logging(settings.log_level)
    _require_data_dir(settings)
    reader = open_listing_reader(settings)
    if reader is None:
        with _store() as store:
            yield store
        return
    try:
        with _store_errors_reported():
            yield reader
    finally:
        reader.close()


@contextmanager
def _store_errors_reported() -> Iterator[None]:
    from gateway.store.errors import StoreError

    try:
        yield
    except StoreError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error


def _require_data_dir(settings: Settings) -> None:
    data_dir = settings.data_dir.resolve()
    if not data_dir.is_dir():
        typer.echo(
            f"error: no gateway data directory at {data_dir}; run the command where the "
            "gateway's data/ is, set GATEWAY_DATA_DIR, or create one with `gateway migrate` "
            "or `gateway serve`",
            err=True,
        )
        raise typer.Exit(1)


def _parse_options(protocol: str, pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs; JSON values (numbers, true/false) keep their type, others are text.

    Checked before anything is stored, so a typo never leaves a source that cannot sync.
    """
    options = parse_option_pairs(pairs)
    _check_options(protocol, options)
    return options


# Written out rather than built from the option models (gateway/fetch/source_options.py),
# which would import the fetch engines into every command; a test keeps the two in step.
SOURCE_OPTION_HELP = (
    "Source option KEY=VALUE, repeatable. Both: allow_plaintext=true, "
    "timeout_seconds=N, tls_ca_file=PATH, tls_fingerprint_sha256=HEX, "
    "daily_budget_mb=N (0: no limit), sasl_mechanism=xoauth2|oauthbearer (OAuth2 sources). "
    "POP3: retention=keep|delete_after_download|"
    'delete_after_days, retention_days=N. IMAP: folders=\'["INBOX","Work"]\', '
    "delete_policy=trash|expunge|keep, move_policy=follow|keep, push=false, "
    "max_connections=N."
)


def _check_options(protocol: str, options: dict[str, Any]) -> None:
    from gateway.fetch.source_options import InvalidSourceOptionError, validate_source_options

    try:
        validate_source_options(protocol, options)
    except InvalidSourceOptionError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


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
    """Run the gateway: IMAP, SMTP submission, fetching and the admin panel, until stopped."""
    import asyncio

    from gateway.memory_tuning import limit_malloc_arenas
    from gateway.server import serve as run_server

    limit_malloc_arenas()  # before any thread exists
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run_server(settings))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema, then exit."""
    with _store(create=True):
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
    """Re-encrypt stored source secrets under the first key of GATEWAY_SECRET_KEY.

    During a rotation the variable holds "NEW,OLD"; after this command OLD may be removed.
    """
    with _store() as store:
        typer.echo(f"re-encrypted {store.rotate_source_secrets()} source secrets")


@app.command()
def index() -> None:
    """Index the search text of fetched mail now, then exit (for `gateway sync` from cron).

    `gateway serve` does this in the background.
    """
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
    with _listings() as store:
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
        typer.Option(help=SOURCE_OPTION_HELP),
    ] = None,
) -> None:
    """Add an external account; its password is read from stdin and stored encrypted."""
    options = _parse_options(protocol.value, option or [])
    _refuse_plaintext_unless_allowed(security.value, options)
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
    """List sources with their id (as log lines give it) and sync state (never secrets)."""
    with _listings() as store:
        owners = {u.id: u.name for u in store.list_users()}
        user_id = store.get_user(name=user).id if user else None
        for source in store.list_sources(user_id=user_id):
            next_run = f"{source.next_run_at:%Y-%m-%d %H:%M:%S}Z" if source.next_run_at else "-"
            oauth = f" (oauth2 {source.oauth_provider})" if source.auth_method == "oauth2" else ""
            typer.echo(
                f"#{source.id}\t{owners.get(source.user_id, '?')}/{source.name}\t"
                f"{source.protocol}{oauth}\t"
                f"{source.security}://{source.host}:{source.port}\t{source.username}\t"
                f"every {source.poll_interval}s\t{_source_state(source)}\tnext {next_run}\t"
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


# --- source state, edit and password (issue 16) ----------------------------------------------


def _source_state(source: SourceInfo) -> str:
    """What `source list` says about a source's health, in words a person acts on."""
    if not source.enabled:
        state = "disabled"
    elif source.reconnect_needed:
        state = (
            f"reconnect needed ({source.last_error}); stopped until the account is connected "
            "again (gateway source connect --reconnect)"
        )
    elif source.credentials_rejected:
        state = (
            f"credentials rejected ({source.consecutive_failures}x: {source.last_error}); "
            "stopped until the password changes (gateway source passwd)"
        )
    elif source.last_error_class:
        state = f"{source.last_error_class} ({source.consecutive_failures}x: {source.last_error})"
    else:
        state = "ok" if source.last_success_at else "never synced"
    if source.removals_not_propagated:
        state += (
            f"; {source.removals_not_propagated} deletions not carried out at the source "
            "(see delete_policy)"
        )
    return state


def _refuse_plaintext_unless_allowed(security: str, options: dict[str, Any]) -> None:
    if security == "none" and options.get("allow_plaintext") is not True:
        typer.echo(
            "error: --security none sends the source password unencrypted; use tls or "
            "starttls, or add --option allow_plaintext=true if you mean it",
            err=True,
        )
        raise typer.Exit(2)


@source_app.command("edit")
def source_edit(
    user: Annotated[str, typer.Option(help="Owner of the source.")],
    name: Annotated[str, typer.Option(help="Name of the source.")],
    new_name: Annotated[str | None, typer.Option(help="Rename the source.")] = None,
    host: Annotated[str | None, typer.Option(help="Server host name.")] = None,
    port: Annotated[int | None, typer.Option(help="Server port.")] = None,
    security: Annotated[Security | None, typer.Option(help="tls, starttls or none.")] = None,
    username: Annotated[str | None, typer.Option(help="Login name at the source.")] = None,
    interval: Annotated[int | None, typer.Option(help="Seconds between polls (min 10).")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Sync the source or not.")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(help="Set a source option KEY=VALUE (as for `source add`), repeatable."),
    ] = None,
    unset_option: Annotated[
        list[str] | None, typer.Option(help="Remove a source option KEY, repeatable.")
    ] = None,
) -> None:
    """Change any setting of a source, options included; it syncs again at once."""
    with _store() as store:
        source = store.get_source(user_name=user, name=name)
        options = {**source.options, **parse_option_pairs(option or [])}
        for key in unset_option or []:
            options.pop(key, None)
        _check_options(source.protocol, options)
        _refuse_plaintext_unless_allowed(security.value if security else source.security, options)
        changed = store.update_source(
            source_id=source.id,
            name=new_name,
            host=host,
            port=port,
            security=security.value if security else None,
            username=username,
            poll_interval=interval,
            enabled=enabled,
            options=options,
        )
        typer.echo(
            f"changed source {user}/{changed.name} "
            f"({changed.protocol}://{changed.host}:{changed.port})"
        )


@source_app.command("passwd")
def source_passwd(
    user: Annotated[str, typer.Option(help="Owner of the source.")],
    name: Annotated[str, typer.Option(help="Name of the source.")],
) -> None:
    """Set a source's password (stdin, or asked on a terminal); a stopped source resumes.

    A source stopped because its login was refused syncs again at once.
    """
    with _store() as store:
        source = store.get_source(user_name=user, name=name)
        secret = _read_secret("New source password")
        store.set_source_secret(source_id=source.id, secret=secret)
        typer.echo(f"password changed for source {user}/{name}")


# --- `gateway source test` (admin issue 19): the panel's connection test, from a terminal ---


@source_app.command("test")
def source_test(
    user: Annotated[str, typer.Option(help="Owner of the source.")],
    name: Annotated[str, typer.Option(help="Name of the source.")],
    deadline: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 20.0,
) -> None:
    """Connect, secure, log in and list (IMAP) or count (POP3); say which step failed."""
    import asyncio

    from gateway.fetch.connection_check import check_connection
    from gateway.fetch.source_auth import saved_credential

    with _store() as store:
        source = store.get_source(user_name=user, name=name)
        credential = saved_credential(store, source)
        result = asyncio.run(check_connection(source, credential, deadline_seconds=deadline))
    for step in result.passed:
        typer.echo(f"ok\t{step.step}\t{step.seconds:.3f}s")
    if not result.ok:
        typer.echo(f"FAILED\t{result.failed_step}\t{result.message}", err=True)
        raise typer.Exit(1)
    detail = (
        f"{result.messages} messages on the server"
        if result.messages is not None
        else f"folders: {', '.join(result.folders)}"
    )
    typer.echo(f"connection OK; {detail}")


@app.command()
def sync(
    user: Annotated[str | None, typer.Option(help="Only this user's sources.")] = None,
    source: Annotated[str | None, typer.Option(help="Only the source with this name.")] = None,
) -> None:
    """Run one sync pass over the selected sources now, then exit (non-zero on any failure)."""
    from gateway.progress import terminal_progress
    from gateway.sync_pass import run_sync_pass

    with _store() as store, terminal_progress("sync", "sources") as progress:
        failures = run_sync_pass(store, user_name=user, source_name=source, progress=progress)
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
        from gateway.progress import terminal_progress

        with terminal_progress("export", "messages") as progress:
            count = exporter(store, user_id=owner.id, directory=directory, progress=progress)
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
        from gateway.progress import terminal_progress

        with terminal_progress("import", "messages") as progress:
            count = import_path(
                store, user_id=owner.id, path=path, mailbox_name=mailbox, progress=progress
            )
        typer.echo(f"imported {count} messages from {path}")


# --- sending: identities and the outbound queue (gateway/cli_smtp.py) ----------------------
from gateway.cli_smtp import identity_app, queue_app  # noqa: E402 - needs _store above

app.add_typer(identity_app, name="identity")
app.add_typer(queue_app, name="queue")


def main() -> None:
    app()


# --- OAuth2: connect an account by signing in at its provider (gateway/cli_oauth.py) --------
from gateway.cli_oauth import source_connect  # noqa: E402 - needs _store above

source_app.command("connect")(source_connect)
