"""What may be set on an identity (an address a user sends as) and how its mail is relayed,
as pydantic models: one definition serves `gateway identity add|edit`, the admin API's
schema and its validation, so a wrong value is refused the same way wherever it is typed.

The relay secret is write-only: `SecretStr` in requests (masked in reprs and logs), absent
from every response; an edit without one keeps the stored secret.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails

RelaySecurity = Literal["tls", "starttls", "none"]
RelaySecret = Annotated[SecretStr, Field(min_length=1, max_length=1024)]
Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class InvalidIdentitySettingsError(ValueError):
    """A setting is unknown or has a value it cannot take; the message names the field."""


class RelayOptions(BaseModel):
    """Connection options of the relay (the provider's submission server)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tls_ca_file: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="PEM file whose CAs alone are trusted.",
    )
    timeout_seconds: float | None = Field(
        default=None, ge=1, le=3600, description="Seconds for each network step."
    )
    allow_plaintext: bool | None = Field(
        default=None, description="Allow relay security none (password sent unencrypted)."
    )

    def stored(self) -> dict[str, Any]:
        """Only what was set: unset options keep the relay's defaults."""
        return self.model_dump(exclude_none=True)


class IdentitySettings(BaseModel):
    """Fields both adding and editing take; None leaves the default (add) or value (edit)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=255)
    relay_host: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^\s/]+$",
        description="Submission server; on add, defaults from the provider.",
    )
    relay_port: int | None = Field(default=None, ge=1, le=65535, description="587 or 465.")
    relay_security: RelaySecurity | None = Field(
        default=None, description="starttls (587) or tls (465); none needs allow_plaintext."
    )
    relay_username: str | None = Field(
        default=None, min_length=1, max_length=320, description="Login at the relay."
    )
    save_to_source_sent: bool | None = Field(
        default=None,
        description="Also file each sent message in the IMAP source's own Sent folder.",
    )
    relay_options: RelayOptions | None = None

    @model_validator(mode="after")
    def _plaintext_needs_consent(self) -> IdentitySettings:
        if self.relay_security == "none" and not (
            self.relay_options is not None and self.relay_options.allow_plaintext
        ):
            raise ValueError(
                "relay_security none sends the password unencrypted: choose tls or starttls, "
                "or set relay_options.allow_plaintext to true (local testing only)"
            )
        return self

    def store_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the store's add_identity / update_identity."""
        return {
            "display_name": self.display_name,
            "relay_host": self.relay_host,
            "relay_port": self.relay_port,
            "relay_security": self.relay_security,
            "relay_username": self.relay_username,
            "save_to_source_sent": self.save_to_source_sent,
            "relay_options": self.relay_options.stored() if self.relay_options else None,
        }


SettingsModel = TypeVar("SettingsModel", bound=IdentitySettings)


class IdentityCreate(IdentitySettings):
    address: Address
    source_id: int | None = Field(
        default=None, ge=1, description="Your source whose login and secret relay it."
    )
    relay_secret: RelaySecret | None = Field(
        default=None, description="Password at the relay; without one, the source's is used."
    )


class IdentityUpdate(IdentitySettings):
    relay_secret: RelaySecret | None = Field(
        default=None, description="A new relay password; leave it out to keep the stored one."
    )
    use_source_secret: bool = Field(
        default=False, description="Forget the identity's own secret and log in with the source's."
    )

    @model_validator(mode="after")
    def _one_secret(self) -> IdentityUpdate:
        if self.relay_secret is not None and self.use_source_secret:
            raise ValueError("give relay_secret or use_source_secret, not both")
        return self


def validate_identity_settings(model: type[SettingsModel], values: dict[str, Any]) -> SettingsModel:
    """The CLI's way in: the model, or an error naming each wrong field."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(_describe(problem) for problem in error.errors())
        raise InvalidIdentitySettingsError(problems) from None


def _describe(problem: ErrorDetails) -> str:
    where = ".".join(str(part) for part in problem["loc"]) or "settings"
    if problem["type"] == "extra_forbidden" and problem["loc"][:1] == ("relay_options",):
        return f"{where}: unknown relay option; known: {', '.join(RelayOptions.model_fields)}"
    return f"{where}: {problem['msg']}"
