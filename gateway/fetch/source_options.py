"""Every per-source option as a typed pydantic model per protocol: one definition serves the
CLI (`--option KEY=VALUE` and its help), the admin API's schema and validation.

Options live in the source's JSON `options`; the engines read them with their defaults, so only
the options someone set are stored (unset ones stay absent). A typo must be refused when it is
typed, not discovered at 3 a.m. as a failing sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic import model_validator as _model_validator

NonEmptyText = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class InvalidSourceOptionError(ValueError):
    """An option is unknown, not for this protocol, or has a value it cannot take."""


class CommonOptions(BaseModel):
    """Options both engines read."""

    # strict: "yes" is not a boolean and true is not a number.
    model_config = ConfigDict(extra="forbid", strict=True)

    allow_plaintext: bool | None = Field(
        default=None,
        description="true or false: allow security none (password sent unencrypted).",
    )
    timeout_seconds: float | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="a number of seconds >= 1 for each network step (30).",
    )
    tls_ca_file: NonEmptyText | None = Field(
        default=None, description="a path to a PEM file whose CAs alone are trusted."
    )
    tls_fingerprint_sha256: NonEmptyText | None = Field(
        default=None, description="a hex SHA-256 of the server certificate to trust (a pin)."
    )
    daily_budget_mb: float | None = Field(
        default=None,
        ge=0,
        # Bounded so the byte count stays an integer (schemathesis found 7e307 -> OverflowError).
        le=1e12,
        description="megabytes downloaded per day at most, 0 = no limit "
        "(IMAP 2500, POP3 1250: the Gmail limits).",
    )


class Pop3Options(CommonOptions):
    """Options of POP3 sources."""

    retention: Literal["keep", "delete_after_download", "delete_after_days"] | None = Field(
        default=None,
        description="keep, delete_after_download or delete_after_days: what happens to mail "
        "on the server once it is safely stored here (keep).",
    )
    retention_days: float | None = Field(
        default=None,
        ge=0,
        le=36500,
        description="a number of days, for retention delete_after_days.",
    )

    @_model_validator(mode="after")
    def _days_with_delete_after_days(self) -> Pop3Options:
        if self.retention == "delete_after_days" and self.retention_days is None:
            raise ValueError("retention_days is required with retention delete_after_days")
        return self


class ImapOptions(CommonOptions):
    """Options of IMAP sources."""

    folders: list[NonEmptyText] | None = Field(
        default=None,
        description='a JSON list of folder names, e.g. ["INBOX"] (all folders when unset).',
    )
    delete_policy: Literal["trash", "expunge", "keep"] | None = Field(
        default=None,
        description="trash, expunge or keep: what a delete here does at the source (trash).",
    )
    move_policy: Literal["follow", "keep"] | None = Field(
        default=None, description="follow or keep: whether moves here are made there (follow)."
    )
    push: bool | None = Field(
        default=None, description="true or false: watch INBOX with IDLE for new mail (true)."
    )
    max_connections: int | None = Field(
        default=None, ge=1, description="a whole number >= 1 of connections to the server (2)."
    )


OPTION_MODELS: dict[str, type[CommonOptions]] = {"pop3": Pop3Options, "imap": ImapOptions}


def parse_source_options(protocol: str, options: Mapping[str, Any]) -> CommonOptions:
    """The typed options, or `InvalidSourceOptionError` naming the first bad one."""
    model = OPTION_MODELS.get(protocol)
    if model is None:
        raise InvalidSourceOptionError(f"no options for protocol {protocol!r}")
    for name in options:
        if name in model.model_fields:
            continue
        if any(name in other.model_fields for other in OPTION_MODELS.values()):
            raise InvalidSourceOptionError(f"option {name} does not apply to {protocol} sources")
        raise InvalidSourceOptionError(f"unknown source option: {name}")
    try:
        return model.model_validate(dict(options))
    except ValidationError as error:
        raise InvalidSourceOptionError(_describe(model, error)) from None


def validate_source_options(protocol: str, options: Mapping[str, Any]) -> None:
    """Raise `InvalidSourceOptionError` naming the first bad option and what it should be."""
    parse_source_options(protocol, options)


def stored_options(options: CommonOptions) -> dict[str, Any]:
    """What goes into the source's JSON: the options that were set."""
    return options.model_dump(exclude_none=True)


def _describe(model: type[CommonOptions], error: ValidationError) -> str:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    if not location:
        return str(first["msg"]).removeprefix("Value error, ")
    name = location[0]
    field = model.model_fields.get(name)
    expected = field.description if field is not None else ""
    return f"option {name}: expected {expected} Got {first.get('input')!r}"
