"""Errors a command handler raises; each renders its own tagged response."""

from __future__ import annotations

from typing import Literal

from gateway.imap.protocol.codes import ResponseCode
from gateway.store.errors import (
    AlreadyExistsError,
    InvalidOperationError,
    LimitExceededError,
    MessageTooLargeError,
    NotFoundError,
    StoreError,
)


class CommandFailedError(Exception):
    """End the current command with a tagged NO or BAD; the session goes on."""

    def __init__(self, status: Literal["NO", "BAD"], text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


class SessionEndedError(Exception):
    """The server ended the session with an untagged BYE; no tagged response follows."""


def no(text: str, code: str | None = None) -> CommandFailedError:
    return CommandFailedError("NO", text, code)


def bad(text: str, code: str | None = None) -> CommandFailedError:
    return CommandFailedError("BAD", text, code)


def from_store_error(
    error: StoreError, *, missing_code: ResponseCode = ResponseCode.NONEXISTENT
) -> CommandFailedError:
    """RFC 5530 response codes for the store's domain errors."""
    if isinstance(error, NotFoundError):
        return no(str(error), missing_code)
    if isinstance(error, AlreadyExistsError):
        return no(str(error), ResponseCode.ALREADYEXISTS)
    if isinstance(error, MessageTooLargeError):
        return no(str(error), ResponseCode.TOOBIG)
    if isinstance(error, LimitExceededError):
        return no(str(error), ResponseCode.LIMIT)
    if isinstance(error, InvalidOperationError):
        return no(str(error), ResponseCode.CANNOT)
    return no(str(error), ResponseCode.SERVERBUG)
