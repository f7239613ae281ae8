"""The CAPABILITY list: advertise exactly what works, in the state the session is in."""

from __future__ import annotations

# RFC 9051 is not offered: clients expecting IMAP4rev2 all fall back to IMAP4rev1.
_ALWAYS = ("IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE")
_AFTER_LOGIN = (
    "NAMESPACE",
    "UNSELECT",
    "CHILDREN",
    "UIDPLUS",
    "MOVE",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "STATUS=SIZE",
)


def capabilities(
    *,
    authenticated: bool,
    tls_active: bool,
    starttls_offered: bool,
    plaintext_allowed: bool,
    append_limit: int,
    compression_active: bool = False,
) -> list[str]:
    names = list(_ALWAYS)
    if authenticated:
        names.extend(_AFTER_LOGIN)
        names.append(f"APPENDLIMIT={append_limit}")
        if not compression_active:
            names.append("COMPRESS=DEFLATE")
        return names
    if starttls_offered and not tls_active:
        names.append("STARTTLS")
    if tls_active or plaintext_allowed:
        names.append("AUTH=PLAIN")
    else:
        # RFC 3501 §6.2.3: no credentials in the clear.
        names.append("LOGINDISABLED")
    return names
