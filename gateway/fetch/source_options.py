"""Every per-source option, checked in one place before a source is stored or changed.

Options live in the source's JSON `options`; the engines read them with their defaults. A
typo must be refused when it is typed, not discovered at 3 a.m. as a failing sync.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.fetch.errors import SyncError
from gateway.fetch.retention import retention_policy


class InvalidSourceOptionError(ValueError):
    """An option is unknown, not for this protocol, or has a value it cannot take."""


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda value: value in choices


def _number(minimum: float) -> Callable[[Any], bool]:
    return lambda value: (
        isinstance(value, int | float) and not isinstance(value, bool) and value >= minimum
    )


def _boolean(value: Any) -> bool:
    return isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _folder_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


# name → (protocols it applies to, check, what a valid value looks like)
OPTIONS: dict[str, tuple[frozenset[str], Callable[[Any], bool], str]] = {
    "allow_plaintext": (frozenset({"pop3", "imap"}), _boolean, "true or false"),
    "timeout_seconds": (frozenset({"pop3", "imap"}), _number(1), "a number of seconds >= 1"),
    "tls_ca_file": (frozenset({"pop3", "imap"}), _text, "a path to a PEM file"),
    "tls_fingerprint_sha256": (frozenset({"pop3", "imap"}), _text, "a hex SHA-256"),
    "daily_budget_mb": (frozenset({"pop3", "imap"}), _number(0), "megabytes per day, 0 = no limit"),
    "retention": (frozenset({"pop3"}), _text, "keep, delete_after_download or delete_after_days"),
    "retention_days": (frozenset({"pop3"}), _number(0), "a number of days"),
    "folders": (frozenset({"imap"}), _folder_list, 'a JSON list of folder names, e.g. ["INBOX"]'),
    "delete_policy": (
        frozenset({"imap"}),
        _one_of("trash", "expunge", "keep"),
        "trash, expunge or keep",
    ),
    "move_policy": (frozenset({"imap"}), _one_of("follow", "keep"), "follow or keep"),
    "push": (frozenset({"imap"}), _boolean, "true or false"),
    "max_connections": (frozenset({"imap"}), _number(1), "a whole number >= 1"),
}


def validate_source_options(protocol: str, options: Mapping[str, Any]) -> None:
    """Raise `InvalidSourceOptionError` naming the first bad option and what it should be."""
    for name, value in options.items():
        known = OPTIONS.get(name)
        if known is None:
            raise InvalidSourceOptionError(f"unknown source option: {name}")
        protocols, check, expected = known
        if protocol not in protocols:
            raise InvalidSourceOptionError(f"option {name} does not apply to {protocol} sources")
        if not check(value):
            raise InvalidSourceOptionError(f"option {name}: expected {expected}, got {value!r}")
    if protocol == "pop3":
        try:
            retention_policy(options)
        except SyncError as error:
            raise InvalidSourceOptionError(error.message) from None
