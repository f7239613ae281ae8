"""Typed arguments shared by several commands: mailbox names, patterns, dates (RFC 3501 §9)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Final

from gateway.imap.protocol._lexer import DQUOTE, ParseError, Reader, decode_text
from gateway.imap.protocol.mutf7 import MailboxNameError, decode_mailbox_name

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
# RFC 3501 §9 date-text: date-day "-" date-month "-" date-year.
_DATE: Final = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})")
# RFC 3501 §9 date-time: date-day-fixed is (SP DIGIT) / 2DIGIT; a bare single digit is tolerated.
_DATE_TIME: Final = re.compile(
    r" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"
)


def _to_date(day: str, month: str, year: str) -> date:
    month_number = _MONTHS.get(month.upper())
    if month_number is None:
        raise ParseError("bad month in date")
    try:
        return date(int(year), month_number, int(day))
    except ValueError:
        raise ParseError("bad date") from None


def read_text(reader: Reader, what: str = "string") -> str:
    """An astring decoded as UTF-8."""
    return decode_text(reader.read_astring(what))


def _decode_name(raw: bytes, *, pattern: bool = False) -> str:
    """A wire mailbox name decoded from modified UTF-7 (RFC 3501 §5.1.3).

    8-bit bytes break the syntax (BAD). A well-formed astring that is not valid modified
    UTF-7 names no mailbox that can exist: NO, as Dovecot answers; as a LIST pattern or
    reference it is kept as sent and simply matches nothing a client could have created.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("mailbox name is not modified UTF-7 (8-bit characters)") from None
    try:
        return decode_mailbox_name(text)
    except MailboxNameError as error:
        if pattern:
            return text
        raise ParseError(f"bad mailbox name: {error}", status="NO") from None


def _normalise_inbox(name: str) -> str:
    # RFC 3501 §5.1: INBOX is case-insensitive. isascii() keeps e.g. a dotless i (U+0131)
    # from upper-casing into "INBOX".
    return "INBOX" if name.isascii() and name.upper() == "INBOX" else name


def read_mailbox(reader: Reader) -> str:
    """RFC 3501 §9 mailbox: an astring in modified UTF-7 (§5.1.3), INBOX case-normalised."""
    return _normalise_inbox(_decode_name(reader.read_astring("mailbox name")))


def read_reference(reader: Reader) -> str:
    """The LIST/LSUB reference name: decoded, but not INBOX-normalised (it is a prefix)."""
    return _decode_name(reader.read_astring("reference name"), pattern=True)


def read_list_pattern(reader: Reader) -> str:
    """RFC 3501 §9 list-mailbox; `*` and `%` are printable, so they survive decoding."""
    return _normalise_inbox(_decode_name(reader.read_list_mailbox(), pattern=True))


def read_search_date(reader: Reader) -> date:
    """RFC 3501 §9 date: date-text, optionally quoted (`1-Feb-1994`)."""
    raw = reader.read_quoted() if reader.peek() == DQUOTE else reader.read_atom("date").encode()
    match = _DATE.fullmatch(raw.decode("ascii", "replace"))
    if match is None:
        raise ParseError("bad date")
    return _to_date(*match.groups())


def read_date_time(reader: Reader) -> datetime:
    """RFC 3501 §9 date-time: `"17-Jul-1996 02:44:25 -0700"`, as an aware datetime."""
    raw = reader.read_quoted().decode("ascii", "replace")
    match = _DATE_TIME.fullmatch(raw)
    if match is None:
        raise ParseError("bad date-time")
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    if int(zone_hours) > 23 or int(zone_minutes) > 59:
        raise ParseError("bad time zone in date-time")
    offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    zone = timezone(-offset if sign == "-" else offset)
    day_value = _to_date(day, month, year)
    try:
        return datetime(
            day_value.year,
            day_value.month,
            day_value.day,
            int(hour),
            int(minute),
            int(second),
            tzinfo=zone,
        )
    except ValueError:
        raise ParseError("bad time in date-time") from None
