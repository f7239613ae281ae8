"""Suggest server settings for an address (providers, autoconfig, SRV, conventional names)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway.admin.deps import CurrentUser, ServicesDep, unprocessable
from gateway.admin.schemas import ServerSettingPublic, SuggestionPublic
from gateway.mail_settings.suggest import InvalidAddressError

router = APIRouter(prefix="/api", tags=["sources"])


@router.get("/suggest", responses={422: {"description": "Not an address"}})
async def suggest_settings(
    address: Annotated[str, Query(min_length=3, max_length=320)],
    user: CurrentUser,
    services: ServicesDep,
) -> SuggestionPublic:
    """Propose IMAP, POP3 and SMTP settings for an address, in Thunderbird's order."""
    try:
        suggestion = await services.suggester.suggest(address)
    except InvalidAddressError as error:
        raise unprocessable(str(error), "address") from None
    return SuggestionPublic(
        address=suggestion.address,
        origin=suggestion.origin,
        servers=[
            ServerSettingPublic(
                protocol=s.protocol,
                host=s.host,
                port=s.port,
                security=s.security,
                username=s.username,
            )
            for s in suggestion.servers
        ],
    )
