"""Thunderbird's autoconfig format (`config-v1.1.xml`): parse the servers out of it.

https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat — incomingServer
(type imap/pop3) and outgoingServer (smtp), with socketType SSL / STARTTLS / plain and
username placeholders %EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN%.
"""

from __future__ import annotations

from defusedxml import ElementTree

from gateway.mail_settings.model import Security, ServerProtocol, ServerSetting

_SECURITY: dict[str, Security] = {"SSL": "tls", "STARTTLS": "starttls", "plain": "none"}
_PROTOCOLS: dict[str, ServerProtocol] = {"imap": "imap", "pop3": "pop3", "smtp": "smtp"}


def parse_autoconfig(document: bytes, address: str) -> list[ServerSetting]:
    """The servers in an autoconfig document, in its order; [] for one we cannot read."""
    local_part, _, domain = address.partition("@")
    try:
        root = ElementTree.fromstring(document)
    except Exception:  # a malformed or hostile document is simply no suggestion
        return []
    servers: list[ServerSetting] = []
    for element in root.iter():
        if element.tag not in ("incomingServer", "outgoingServer"):
            continue
        protocol = _PROTOCOLS.get(element.get("type", ""))
        security = _SECURITY.get(element.findtext("socketType", "").strip())
        host = element.findtext("hostname", "").strip()
        port_text = element.findtext("port", "").strip()
        if protocol is None or security is None or not host or not port_text.isdigit():
            continue
        port = int(port_text)
        if not 0 < port < 65536:
            continue
        username = (
            element.findtext("username", "%EMAILADDRESS%")
            .strip()
            .replace("%EMAILADDRESS%", address)
            .replace("%EMAILLOCALPART%", local_part)
            .replace("%EMAILDOMAIN%", domain)
        )
        servers.append(ServerSetting(protocol, host, port, security, username))
    return servers
