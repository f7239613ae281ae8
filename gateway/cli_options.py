"""`--option KEY=VALUE` pairs of the `gateway` command, shared by sources and identities."""

from __future__ import annotations

import json
from typing import Any

import typer


def parse_option_pairs(pairs: list[str]) -> dict[str, Any]:
    """JSON values (numbers, true/false) keep their type, others are text; exit 2 on a bad pair."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            typer.echo(f"error: --option expects KEY=VALUE, got {pair!r}", err=True)
            raise typer.Exit(2)
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options
