"""Source options are checked before a source is stored: names, protocols, values."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fetch.source_options import InvalidSourceOptionError, validate_source_options


@pytest.mark.parametrize(
    ("protocol", "options"),
    [
        ("imap", {"folders": ["INBOX", "Work/Projects"], "delete_policy": "expunge"}),
        ("imap", {"move_policy": "keep", "push": False, "max_connections": 1}),
        ("imap", {"daily_budget_mb": 0, "timeout_seconds": 5.5, "allow_plaintext": True}),
        ("pop3", {"retention": "delete_after_days", "retention_days": 14}),
        ("pop3", {"daily_budget_mb": 1250, "tls_fingerprint_sha256": "ab:cd"}),
    ],
)
def test_valid_options_pass(protocol: str, options: dict[str, Any]) -> None:
    validate_source_options(protocol, options)


@pytest.mark.parametrize(
    ("protocol", "options", "message"),
    [
        ("imap", {"folder": ["INBOX"]}, "unknown source option: folder"),
        ("imap", {"folders": "INBOX"}, "JSON list"),
        ("imap", {"folders": ["INBOX", ""]}, "JSON list"),
        ("imap", {"delete_policy": "shred"}, "trash, expunge or keep"),
        ("imap", {"retention": "keep"}, "does not apply to imap"),
        ("pop3", {"push": True}, "does not apply to pop3"),
        ("pop3", {"retention": "delete_after_days"}, "retention_days"),
        ("imap", {"timeout_seconds": 0}, ">= 1"),
        ("imap", {"allow_plaintext": "yes"}, "true or false"),
        ("imap", {"daily_budget_mb": True}, "megabytes"),
    ],
)
def test_bad_options_are_refused_with_a_reason(
    protocol: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSourceOptionError, match=message):
        validate_source_options(protocol, options)


def test_the_cli_help_names_every_option_of_the_models() -> None:
    from gateway.cli import SOURCE_OPTION_HELP
    from gateway.fetch.source_options import OPTION_MODELS

    for model in OPTION_MODELS.values():
        for name in model.model_fields:
            assert f"{name}=" in SOURCE_OPTION_HELP, name
