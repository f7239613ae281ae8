"""OAuth2 providers the operator configured: Google and Microsoft presets, one generic one.

Endpoints, scopes and mail servers of the presets are the providers' documented values; the
client id and secret come from the environment (`Settings.oauth2_*`). A generic provider
takes its endpoints from OpenID discovery at its issuer (OpenID Connect Discovery 1.0 §4).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from gateway.settings import Settings

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT = 10.0


class ProviderError(Exception):
    """A provider is not configured, or its discovery document is unusable."""


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    security: str


@dataclass(frozen=True)
class OAuth2Provider:
    """One provider: how to sign in there and which mail servers take its tokens."""

    name: str
    title: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: str
    imap: MailServer | None
    pop3: MailServer | None
    smtp: MailServer | None
    authorization_endpoint: str = ""
    token_endpoint: str = ""
    # Set for a generic provider: endpoints come from discovery on first use.
    issuer: str | None = None
    # Extra authorization-request parameters (Google needs access_type=offline for a
    # refresh token; prompt=consent makes every provider issue a fresh one).
    authorization_params: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType({"prompt": "consent"})
    )
    # The SASL mechanism its servers take (Microsoft offers XOAUTH2 only).
    sasl_mechanism: str = "XOAUTH2"


# https://developers.google.com/identity/protocols/oauth2/web-server and
# https://developers.google.com/gmail/imap/xoauth2-protocol: https://mail.google.com/ is the
# only scope that covers IMAP, POP3 and SMTP.
def _google(settings: Settings) -> OAuth2Provider | None:
    if not (settings.oauth2_google_client_id and settings.oauth2_google_client_secret):
        return None
    return OAuth2Provider(
        name="google",
        title="Google",
        client_id=settings.oauth2_google_client_id,
        client_secret=settings.oauth2_google_client_secret,
        scopes="https://mail.google.com/ openid email",
        authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
        token_endpoint="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL
        imap=MailServer("imap.gmail.com", 993, "tls"),
        pop3=MailServer("pop.gmail.com", 995, "tls"),
        smtp=MailServer("smtp.gmail.com", 465, "tls"),
        authorization_params=MappingProxyType({"access_type": "offline", "prompt": "consent"}),
    )


# https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-
# an-imap-pop-smtp-application-by-using-oauth: one token per resource, so the scopes name
# outlook.office.com only; offline_access brings the refresh token.
def _microsoft(settings: Settings) -> OAuth2Provider | None:
    if not (settings.oauth2_microsoft_client_id and settings.oauth2_microsoft_client_secret):
        return None
    base = f"https://login.microsoftonline.com/{settings.oauth2_microsoft_tenant}/oauth2/v2.0"
    return OAuth2Provider(
        name="microsoft",
        title="Microsoft",
        client_id=settings.oauth2_microsoft_client_id,
        client_secret=settings.oauth2_microsoft_client_secret,
        scopes="https://outlook.office.com/IMAP.AccessAsUser.All "
        "https://outlook.office.com/POP.AccessAsUser.All "
        "https://outlook.office.com/SMTP.Send offline_access openid email",
        authorization_endpoint=f"{base}/authorize",
        token_endpoint=f"{base}/token",
        imap=MailServer("outlook.office365.com", 993, "tls"),
        pop3=MailServer("outlook.office365.com", 995, "tls"),
        smtp=MailServer("smtp.office365.com", 587, "starttls"),
    )


def parse_mail_server(text: str | None) -> MailServer | None:
    """`host:port:security` from a setting."""
    if not text:
        return None
    try:
        host, port, security = text.rsplit(":", 2)
        server = MailServer(host, int(port), security)
    except ValueError:
        raise ProviderError(f"mail server must be host:port:security, not {text!r}") from None
    if security not in ("tls", "starttls", "none"):
        raise ProviderError(f"security must be tls, starttls or none, not {security!r}")
    return server


def _generic(settings: Settings) -> OAuth2Provider | None:
    if not (settings.oauth2_generic_issuer and settings.oauth2_generic_client_id):
        return None
    return OAuth2Provider(
        name="generic",
        title=settings.oauth2_generic_title,
        client_id=settings.oauth2_generic_client_id,
        client_secret=settings.oauth2_generic_client_secret or "",
        scopes=settings.oauth2_generic_scopes,
        issuer=settings.oauth2_generic_issuer.rstrip("/"),
        imap=parse_mail_server(settings.oauth2_generic_imap),
        pop3=None,
        smtp=parse_mail_server(settings.oauth2_generic_smtp),
    )


class ProviderRegistry:
    """The configured providers by name; a generic one is completed by discovery once."""

    def __init__(self, providers: list[OAuth2Provider]) -> None:
        self._providers = {provider.name: provider for provider in providers}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderRegistry:
        found = [build(settings) for build in (_google, _microsoft, _generic)]
        return cls([provider for provider in found if provider is not None])

    def names(self) -> list[str]:
        return list(self._providers)

    def configured(self) -> list[OAuth2Provider]:
        return list(self._providers.values())

    def get(self, name: str) -> OAuth2Provider:
        """The provider with its endpoints; raises ProviderError if unknown or undiscoverable."""
        provider = self._providers.get(name)
        if provider is None:
            raise ProviderError(f"OAuth2 provider not configured: {name}")
        if provider.token_endpoint:
            return provider
        with self._lock:
            provider = self._providers[name]
            if not provider.token_endpoint:
                provider = _discover(provider)
                self._providers[name] = provider
            return provider


def _discover(provider: OAuth2Provider) -> OAuth2Provider:
    import httpx  # only a generic provider needs it, once per process

    url = f"{provider.issuer}{DISCOVERY_PATH}"
    try:
        response = httpx.get(url, timeout=DISCOVERY_TIMEOUT)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise ProviderError(f"OpenID discovery at {url} failed: {error}") from None
    # OpenID Connect Discovery 1.0 §4.3: the document's issuer must equal the one asked for.
    if str(document.get("issuer", "")).rstrip("/") != provider.issuer:
        raise ProviderError(f"discovery at {url} names another issuer: {document.get('issuer')}")
    try:
        return replace(
            provider,
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
        )
    except KeyError as error:
        raise ProviderError(f"discovery at {url} lacks {error.args[0]}") from None
