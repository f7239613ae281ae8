"""What a settings suggestion is made of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ServerProtocol = Literal["imap", "pop3", "smtp"]
Security = Literal["tls", "starttls", "none"]
Origin = Literal["provider", "autoconfig", "srv", "guess", "none"]


@dataclass(frozen=True)
class ServerSetting:
    protocol: ServerProtocol
    host: str
    port: int
    security: Security
    username: str


@dataclass(frozen=True)
class Suggestion:
    """Servers for one address, best first per protocol, and where they were found."""

    address: str
    origin: Origin
    servers: list[ServerSetting] = field(default_factory=list)
