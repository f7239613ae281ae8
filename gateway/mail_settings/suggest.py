"""Propose POP3, IMAP and SMTP settings for an address in Thunderbird's order: built-in
providers, the domain's autoconfig XML, RFC 6186 SRV records, then conventional host names.

DNS (dnspython) and HTTP (httpx) are injected, so tests run offline against local servers;
every lookup is bounded in time and a failing one only moves on to the next method.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

from gateway.mail_settings.autoconfig import parse_autoconfig
from gateway.mail_settings.model import Security, ServerProtocol, ServerSetting, Suggestion
from gateway.mail_settings.providers import provider_settings

log = logging.getLogger("gateway.admin")

LOOKUP_TIMEOUT_SECONDS = 5.0
MAX_AUTOCONFIG_BYTES = 64 * 1024
# RFC 6186 §3.1 (IMAP, POP3), RFC 8314 §5.1 (submissions), each in order of preference.
_SRV: tuple[tuple[str, ServerProtocol, Security], ...] = (
    ("_imaps._tcp", "imap", "tls"),
    ("_imap._tcp", "imap", "starttls"),
    ("_pop3s._tcp", "pop3", "tls"),
    ("_pop3._tcp", "pop3", "starttls"),
    ("_submissions._tcp", "smtp", "tls"),
    ("_submission._tcp", "smtp", "starttls"),
)
# Conventional names, and the ports and security Thunderbird tries first for them.
_GUESSES: tuple[tuple[str, ServerProtocol, int, Security], ...] = (
    ("imap", "imap", 993, "tls"),
    ("mail", "imap", 993, "tls"),
    ("pop", "pop3", 995, "tls"),
    ("pop3", "pop3", 995, "tls"),
    ("mail", "pop3", 995, "tls"),
    ("smtp", "smtp", 587, "starttls"),
    ("smtp", "smtp", 465, "tls"),
    ("mail", "smtp", 587, "starttls"),
)


def autoconfig_urls(domain: str, address: str) -> list[str]:
    """Where Thunderbird looks for a domain's own autoconfig document."""
    query = f"?emailaddress={address}"
    return [
        f"https://autoconfig.{domain}/mail/config-v1.1.xml{query}",
        f"https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
        f"http://autoconfig.{domain}/mail/config-v1.1.xml{query}",
    ]


class InvalidAddressError(ValueError):
    """The text is not an address of the form local@domain."""


class SettingsSuggester:
    """Finds settings for addresses; one instance serves the whole app."""

    def __init__(
        self,
        *,
        resolver: dns.asyncresolver.Resolver | None = None,
        http_client: Callable[[], httpx.AsyncClient] | None = None,
        urls: Callable[[str, str], list[str]] = autoconfig_urls,
        timeout: float = LOOKUP_TIMEOUT_SECONDS,
    ) -> None:
        self._resolver = resolver
        self._http_client = http_client or (lambda: httpx.AsyncClient(timeout=timeout))
        self._urls = urls
        self._timeout = timeout

    async def suggest(self, address: str) -> Suggestion:
        address = address.strip()
        local_part, _, domain = address.rpartition("@")
        domain = domain.lower().rstrip(".")
        if not local_part or "." not in domain or any(c.isspace() for c in address):
            raise InvalidAddressError(f"not an email address: {address!r}")
        servers = provider_settings(domain, address)
        if servers:
            return Suggestion(address, "provider", servers)
        servers = await self._from_autoconfig(domain, address)
        if servers:
            return Suggestion(address, "autoconfig", servers)
        servers = await self._from_srv(domain, address)
        if servers:
            return Suggestion(address, "srv", servers)
        servers = await self._from_guesses(domain, address)
        return Suggestion(address, "guess" if servers else "none", servers)

    def _dns(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            self._resolver = dns.asyncresolver.Resolver()
        return self._resolver

    async def _from_autoconfig(self, domain: str, address: str) -> list[ServerSetting]:
        async with self._http_client() as client:
            for url in self._urls(domain, address):
                try:
                    async with asyncio.timeout(self._timeout):
                        response = await client.get(url, follow_redirects=False)
                except (httpx.HTTPError, TimeoutError) as error:
                    log.debug("event=autoconfig_miss domain=%s error=%s", domain, type(error))
                    continue
                if response.status_code != httpx.codes.OK:
                    continue
                servers = parse_autoconfig(response.content[:MAX_AUTOCONFIG_BYTES], address)
                if servers:
                    return servers
        return []

    async def _from_srv(self, domain: str, address: str) -> list[ServerSetting]:
        servers: list[ServerSetting] = []
        for prefix, protocol, security in _SRV:
            try:
                answer = await self._dns().resolve(
                    f"{prefix}.{domain}", "SRV", lifetime=self._timeout
                )
            except (dns.exception.DNSException, OSError):
                continue
            records = sorted(answer, key=lambda r: (r.priority, -r.weight))
            for record in records:
                target = str(record.target).rstrip(".")
                # RFC 6186 §4: a target of "." means the service is not offered.
                if target and record.port:
                    servers.append(
                        ServerSetting(protocol, target, int(record.port), security, address)
                    )
                    break
        return servers

    async def _from_guesses(self, domain: str, address: str) -> list[ServerSetting]:
        servers: list[ServerSetting] = []
        known: dict[str, bool] = {}
        for label, protocol, port, security in _GUESSES:
            if any(s.protocol == protocol for s in servers):
                continue
            host = f"{label}.{domain}"
            if host not in known:
                known[host] = await self._resolves(host)
            if known[host]:
                servers.append(ServerSetting(protocol, host, port, security, address))
        return servers

    async def _resolves(self, host: str) -> bool:
        for kind in ("A", "AAAA"):
            try:
                await self._dns().resolve(host, kind, lifetime=self._timeout)
            except (dns.exception.DNSException, OSError):
                continue
            return True
        return False
