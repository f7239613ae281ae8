"""Events the command parser hands to the session, besides the commands themselves (h11 style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


class NeedData:
    """The parser needs more bytes before it can produce another event."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()


@dataclass(frozen=True)
class LiteralContinuation:
    """A synchronising literal `{size}` was announced (RFC 3501 §7.5).

    The session must write `+ Ready for literal data` before the client sends the literal;
    the parser goes on with the same command when more data arrives.
    """

    tag: str
    size: int


@dataclass(frozen=True)
class CommandError:
    """A command that cannot be run; the rest of it has been (or is being) discarded.

    `tag` is None when the line had no valid tag (the session answers `* BAD`). `code` is a
    response code such as "TOOBIG" (RFC 7889) or "BADCHARSET (US-ASCII UTF-8)" (RFC 3501 §6.4.4).
    """

    tag: str | None
    status: Literal["BAD", "NO"]
    text: str
    code: str | None = None
