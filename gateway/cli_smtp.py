"""`gateway identity ...` and `gateway queue ...`: sending addresses and the outbound queue.

Registered from cli.py; kept apart so the sending side's commands read as one unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli_options import parse_option_pairs
from gateway.identity_settings import (
    IdentityCreate,
    IdentityUpdate,
    InvalidIdentitySettingsError,
    SettingsModel,
    validate_identity_settings,
)
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.store import MailStore

identity_app = typer.Typer(
    help="Manage the addresses users send as, and how each is relayed.", no_args_is_help=True
)
queue_app = typer.Typer(help="Inspect and steer the outbound mail queue.", no_args_is_help=True)


class RelaySecurity(StrEnum):
    tls = "tls"
    starttls = "starttls"
    none = "none"


@contextmanager
def _store() -> Iterator[MailStore]:
    from gateway.cli import _store as open_cli_store  # cli.py registers this module

    with open_cli_store() as store:
        yield store


def _validated(model: type[SettingsModel], values: dict[str, Any]) -> SettingsModel:
    """The same model the admin API validates with; a wrong value exits 2 naming the field."""
    try:
        return validate_identity_settings(model, values)
    except InvalidIdentitySettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


def _settings_values(
    *,
    display_name: str | None,
    relay_host: str | None,
    relay_port: int | None,
    relay_security: RelaySecurity | None,
    relay_username: str | None,
    save_to_source_sent: bool | None,
    option: list[str] | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "display_name": display_name,
        "relay_host": relay_host,
        "relay_port": relay_port,
        "relay_security": relay_security.value if relay_security else None,
        "relay_username": relay_username,
        "save_to_source_sent": save_to_source_sent,
    }
    if option:
        values["relay_options"] = parse_option_pairs(option)
    return values


RelayHost = Annotated[
    str | None, typer.Option(help="Submission server; default from the provider.")
]
RelayPort = Annotated[int | None, typer.Option(help="Its port (587 or 465).")]
RelaySecurityOption = Annotated[
    RelaySecurity | None,
    typer.Option(help="starttls (587), tls (465) or none (needs allow_plaintext=true)."),
]
RelayUsername = Annotated[
    str | None, typer.Option(help="Login at the relay; default the source's.")
]
SaveToSourceSent = Annotated[
    bool | None,
    typer.Option(
        "--save-to-source-sent/--no-save-to-source-sent",
        help="Also file each sent message in the IMAP source's own Sent folder.",
    ),
]
RelayOptionPairs = Annotated[
    list[str] | None,
    typer.Option(help="Relay option KEY=VALUE: tls_ca_file, timeout_seconds, allow_plaintext."),
]


@identity_app.command("add")
def identity_add(
    user: Annotated[str, typer.Option(help="Owner of the address.")],
    address: Annotated[str, typer.Argument(help="The address to send as.")],
    source: Annotated[
        str | None, typer.Option(help="The user's source whose login and secret relay it.")
    ] = None,
    display_name: Annotated[str, typer.Option(help="Name shown with the address.")] = "",
    relay_host: RelayHost = None,
    relay_port: RelayPort = None,
    relay_security: RelaySecurityOption = None,
    relay_username: RelayUsername = None,
    relay_password: Annotated[
        bool,
        typer.Option(
            "--relay-password", help="Read a relay password from stdin (else the source's)."
        ),
    ] = False,
    save_to_source_sent: SaveToSourceSent = None,
    option: RelayOptionPairs = None,
) -> None:
    """Add an address a user may send as (a source's own address is added with the source)."""
    from gateway.cli import _read_secret

    values = _settings_values(
        display_name=display_name,
        relay_host=relay_host,
        relay_port=relay_port,
        relay_security=relay_security,
        relay_username=relay_username,
        save_to_source_sent=save_to_source_sent,
        option=option,
    )
    settings = _validated(IdentityCreate, {**values, "address": address})
    secret = _read_secret("Relay password") if relay_password else None
    with _store() as store:
        owner = store.get_user(name=user)
        source_id = store.get_source(user_name=user, name=source).id if source else None
        arguments = settings.store_arguments()
        arguments["display_name"] = arguments["display_name"] or ""
        identity = store.add_identity(
            user_id=owner.id,
            address=settings.address,
            source_id=source_id,
            relay_secret=secret,
            **arguments,
        )
        typer.echo(
            f"added identity {user}/{identity.address} via {identity.relay_security}://"
            f"{identity.relay_host}:{identity.relay_port}"
        )


@identity_app.command("edit")
def identity_edit(
    user: Annotated[str, typer.Option(help="Owner of the address.")],
    address: Annotated[str, typer.Argument(help="The address to change.")],
    display_name: Annotated[str | None, typer.Option(help="Name shown with the address.")] = None,
    relay_host: RelayHost = None,
    relay_port: RelayPort = None,
    relay_security: RelaySecurityOption = None,
    relay_username: RelayUsername = None,
    relay_password: Annotated[
        bool,
        typer.Option(
            "--relay-password", help="Read a new relay password from stdin (else it is kept)."
        ),
    ] = False,
    use_source_secret: Annotated[
        bool,
        typer.Option(
            "--use-source-secret", help="Forget the identity's own password; use the source's."
        ),
    ] = False,
    save_to_source_sent: SaveToSourceSent = None,
    option: RelayOptionPairs = None,
) -> None:
    """Change how an address is relayed; what is not given stays (the password too)."""
    from gateway.cli import _read_secret

    values = _settings_values(
        display_name=display_name,
        relay_host=relay_host,
        relay_port=relay_port,
        relay_security=relay_security,
        relay_username=relay_username,
        save_to_source_sent=save_to_source_sent,
        option=option,
    )
    if relay_password and use_source_secret:
        typer.echo("error: give --relay-password or --use-source-secret, not both", err=True)
        raise typer.Exit(2)
    settings = _validated(IdentityUpdate, {**values, "use_source_secret": use_source_secret})
    secret = _read_secret("Relay password") if relay_password else None
    with _store() as store:
        identity = store.update_identity(
            user_id=store.get_user(name=user).id,
            address=address,
            relay_secret=secret,
            use_source_secret=settings.use_source_secret,
            **settings.store_arguments(),
        )
        typer.echo(
            f"updated identity {user}/{identity.address} via {identity.relay_security}://"
            f"{identity.relay_host}:{identity.relay_port}"
        )


@identity_app.command("list")
def identity_list(
    user: Annotated[str | None, typer.Option(help="Only this user's addresses.")] = None,
) -> None:
    """List identities with their relay settings (never secrets)."""
    from gateway.cli import _listings  # cli.py registers this module

    with _listings() as store:
        users = [store.get_user(name=user)] if user else store.list_users()
        for owner in users:
            for identity in store.list_identities(user_id=owner.id):
                secret = "own secret" if identity.has_relay_secret else "source secret"
                copies = "sent copy at source" if identity.save_to_source_sent else "-"
                typer.echo(
                    f"{owner.name}/{identity.address}\t{identity.relay_security}://"
                    f"{identity.relay_host}:{identity.relay_port}\t"
                    f"{identity.relay_username or '-'} ({secret})\t{copies}"
                )


@identity_app.command("remove")
def identity_remove(
    user: Annotated[str, typer.Option(help="Owner of the address.")],
    address: Annotated[str, typer.Argument(help="The address to forget.")],
) -> None:
    """Forget an address; the user can no longer send as it."""
    with _store() as store:
        store.remove_identity(user_id=store.get_user(name=user).id, address=address)
        typer.echo(f"removed identity {user}/{address}")


@queue_app.command("list")
def queue_list(
    all_states: Annotated[
        bool, typer.Option("--all", help="Also sent, bounced and dropped messages.")
    ] = False,
) -> None:
    """List queued messages: id, state, attempts, next attempt, sender, recipients, last error."""
    from gateway.store.outbound import PENDING_STATES, STATES

    with _store() as store:
        names = {u.id: u.name for u in store.list_users()}
        for item in store.list_outbound_messages(states=STATES if all_states else PENDING_STATES):
            typer.echo(
                f"{item.id}\t{item.state}\t{item.attempts} attempts\t"
                f"next {item.next_attempt_at:%Y-%m-%d %H:%M:%S}Z\t"
                f"{names.get(item.user_id, '?')}\t{item.sender} -> {','.join(item.recipients)}\t"
                f"{item.size} B\t{item.last_error or item.upstream_reply or '-'}"
            )


@queue_app.command("retry")
def queue_retry(queue_id: Annotated[int, typer.Argument(help="Id from `queue list`.")]) -> None:
    """Relay a queued message at the next opportunity (a bounced one is queued again)."""
    lifetime = timedelta(seconds=Settings().smtp_queue_lifetime_seconds)
    with _store() as store:
        item = store.retry_outbound_message(
            outbound_id=queue_id, now=datetime.now(UTC), lifetime=lifetime
        )
        typer.echo(f"message {item.id} is due now")


@queue_app.command("drop")
def queue_drop(queue_id: Annotated[int, typer.Argument(help="Id from `queue list`.")]) -> None:
    """Give up on a queued message without relaying it or sending a bounce."""
    with _store() as store:
        item = store.drop_outbound_message(outbound_id=queue_id, now=datetime.now(UTC))
        typer.echo(f"dropped message {item.id}")
