"""What we know about big mail providers' submission servers, for identity defaults.

Everything else gets the usual convention: `smtp.` + the address's domain, port 587 with
STARTTLS (RFC 6409 §3.1, RFC 3207).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RelayDefaults:
    host: str
    port: int
    security: str
    # The provider files submitted mail in its own Sent folder (Gmail, Outlook.com do):
    # appending our copy there as well would show every message twice.
    saves_sent_copy: bool


_GMAIL = RelayDefaults("smtp.gmail.com", 587, "starttls", saves_sent_copy=True)
_OUTLOOK = RelayDefaults("smtp-mail.outlook.com", 587, "starttls", saves_sent_copy=True)
_KNOWN: dict[str, RelayDefaults] = {
    "gmail.com": _GMAIL,
    "googlemail.com": _GMAIL,
    "outlook.com": _OUTLOOK,
    "hotmail.com": _OUTLOOK,
    "live.com": _OUTLOOK,
    "msn.com": _OUTLOOK,
    "yahoo.com": RelayDefaults("smtp.mail.yahoo.com", 465, "tls", saves_sent_copy=True),
    "icloud.com": RelayDefaults("smtp.mail.me.com", 587, "starttls", saves_sent_copy=True),
    "me.com": RelayDefaults("smtp.mail.me.com", 587, "starttls", saves_sent_copy=True),
    "aol.com": RelayDefaults("smtp.aol.com", 465, "tls", saves_sent_copy=True),
    "gmx.net": RelayDefaults("mail.gmx.net", 587, "starttls", saves_sent_copy=False),
    "gmx.de": RelayDefaults("mail.gmx.net", 587, "starttls", saves_sent_copy=False),
    "web.de": RelayDefaults("smtp.web.de", 587, "starttls", saves_sent_copy=False),
    "fastmail.com": RelayDefaults("smtp.fastmail.com", 465, "tls", saves_sent_copy=True),
    "zoho.com": RelayDefaults("smtp.zoho.com", 465, "tls", saves_sent_copy=False),
}


def relay_defaults(address: str) -> RelayDefaults:
    """The submission server an address most likely sends through."""
    domain = address.rsplit("@", 1)[-1].strip().lower()
    known = _KNOWN.get(domain)
    if known is not None:
        return known
    return RelayDefaults(f"smtp.{domain}", 587, "starttls", saves_sent_copy=False)
