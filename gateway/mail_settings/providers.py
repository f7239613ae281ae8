"""Built-in settings of well-known providers: the first place Thunderbird looks, too.

Only providers whose published settings are stable; anything else is found by autoconfig,
SRV records or conventional names.
"""

from __future__ import annotations

from gateway.mail_settings.model import Security, ServerSetting

# domain group -> (IMAP host, POP3 host or "" for none, SMTP host, SMTP port); IMAP and POP3
# use implicit TLS on 993/995; SMTP on 465 is implicit TLS, on 587 STARTTLS.
_PROVIDERS: dict[tuple[str, ...], tuple[str, str, str, int]] = {
    ("gmail.com", "googlemail.com"): ("imap.gmail.com", "pop.gmail.com", "smtp.gmail.com", 465),
    ("outlook.com", "hotmail.com", "live.com", "msn.com"): (
        "outlook.office365.com",
        "outlook.office365.com",
        "smtp-mail.outlook.com",
        587,
    ),
    ("yahoo.com", "yahoo.co.uk", "ymail.com"): (
        "imap.mail.yahoo.com",
        "pop.mail.yahoo.com",
        "smtp.mail.yahoo.com",
        465,
    ),
    ("yahoo.co.jp",): (
        "imap.mail.yahoo.co.jp",
        "pop.mail.yahoo.co.jp",
        "smtp.mail.yahoo.co.jp",
        465,
    ),
    ("icloud.com", "me.com", "mac.com"): ("imap.mail.me.com", "", "smtp.mail.me.com", 587),
    ("aol.com",): ("imap.aol.com", "pop.aol.com", "smtp.aol.com", 465),
    ("gmx.net", "gmx.de", "gmx.com"): ("imap.gmx.net", "pop.gmx.net", "mail.gmx.net", 587),
    ("fastmail.com", "fastmail.fm"): (
        "imap.fastmail.com",
        "pop.fastmail.com",
        "smtp.fastmail.com",
        465,
    ),
}


def provider_settings(domain: str, address: str) -> list[ServerSetting]:
    """The built-in settings for `domain`, or [] when it is not a known provider."""
    for domains, (imap, pop3, smtp, smtp_port) in _PROVIDERS.items():
        if domain in domains:
            servers = [ServerSetting("imap", imap, 993, "tls", address)]
            if pop3:
                servers.append(ServerSetting("pop3", pop3, 995, "tls", address))
            security: Security = "tls" if smtp_port == 465 else "starttls"
            servers.append(ServerSetting("smtp", smtp, smtp_port, security, address))
            return servers
    return []
