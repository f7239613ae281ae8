"""`gateway source connect`: connect an account by OAuth2 from a terminal.

It prints the provider's sign-in URL; the person opens it in any browser, signs in, and
pastes back the address the browser ends on (the gateway's callback URL, whether or not
that page loads there). Registered from cli.py.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from enum import StrEnum
from typing import Annotated

import typer

from gateway.settings import Settings


class OAuthProtocol(StrEnum):
    imap = "imap"
    pop3 = "pop3"


def source_connect(
    user: Annotated[str, typer.Option(help="Owner of the source.")],
    provider: Annotated[
        str, typer.Option(help="google, microsoft or generic (as configured by GATEWAY_OAUTH2_*).")
    ],
    name: Annotated[
        str | None, typer.Option(help="Name of the source; default: the account's address.")
    ] = None,
    protocol: Annotated[OAuthProtocol, typer.Option(help="Fetch by IMAP or POP3.")] = (
        OAuthProtocol.imap
    ),
    login_hint: Annotated[
        str | None, typer.Option(help="The address to sign in as (pre-filled at the provider).")
    ] = None,
    reconnect: Annotated[
        bool, typer.Option(help="Give the existing source NAME a new grant (reconnect needed).")
    ] = False,
) -> None:
    """Sign in at an OAuth2 provider and create (or reconnect) a source with its grant."""
    from gateway.cli import _store
    from gateway.oauth2.connect import save_connected_account
    from gateway.oauth2.flow import (
        CALLBACK_PATH,
        AuthorizationError,
        finish_authorization,
        start_authorization,
    )
    from gateway.oauth2.providers import ProviderError

    if reconnect and not name:
        raise typer.BadParameter("--reconnect needs --name of the source")
    settings = Settings()
    base = settings.oauth2_redirect_base_url or f"http://127.0.0.1:{settings.admin_port}"
    with _store() as store:
        owner = store.get_user(name=user)
        source_id = store.get_source(user_name=user, name=name or "").id if reconnect else None
        try:
            chosen = store.oauth2_providers.get(provider)
            url, pending = start_authorization(
                chosen, base.rstrip("/") + CALLBACK_PATH, login_hint=login_hint
            )
            pending = replace(
                pending,
                user_id=owner.id,
                name=name or "",
                protocol=protocol.value,
                source_id=source_id,
            )
            typer.echo("Open this address in a browser, sign in and allow access:")
            typer.echo(url)
            typer.echo("Then paste the address the browser ended on:")
            redirect = sys.stdin.readline().strip()
            account = finish_authorization(chosen, pending, redirect)
            source = save_connected_account(store, chosen, pending, account)
        except (ProviderError, AuthorizationError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
        action = "reconnected" if reconnect else "connected"
        typer.echo(f"{action} source {user}/{source.name} as {account.address}")
