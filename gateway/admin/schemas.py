"""Request and response models of the admin API: Base / Create / Update / Public per resource.

Secrets are `SecretStr` in requests (write-only: `writeOnly` in the schema, masked in reprs and
logs) and appear in no response model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, model_validator

from gateway.admin.source_status import SourceState, WarningCode
from gateway.fetch.connection_check import CheckStep, FailedStep
from gateway.fetch.source_options import CommonOptions, ImapOptions, Pop3Options
from gateway.identity_settings import RelaySecurity
from gateway.mail_settings.model import Origin, Security, ServerProtocol
from gateway.store.outbound_counts import QueueState

Password = Annotated[SecretStr, Field(min_length=1, max_length=1024, json_schema_extra={})]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- auth -------------------------------------------------------------------------------------


class LoginRequest(Model):
    username: str = Field(min_length=1, max_length=255)
    password: Password


class SessionPublic(Model):
    user: UserPublic
    csrf_token: str = Field(description="Send it as the X-CSRF-Token header on every change.")


class PasswordChange(Model):
    current_password: Password
    new_password: Password


# --- users ------------------------------------------------------------------------------------


class UserBase(Model):
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^\s\x00-\x1f\x7f]+$")
    is_admin: bool = False


class UserCreate(UserBase):
    password: Password


class UserUpdate(Model):
    """An administrator's change; what is left out stays. A new password ends the user's
    sessions and revokes their API tokens."""

    password: Password | None = None
    is_admin: StrictBool | None = None  # "yes" is not a yes to administrator rights


class UserPublic(UserBase):
    id: int
    created_at: datetime


# --- sources ----------------------------------------------------------------------------------


class SourceBase(Model):
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^/]+$")
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    security: Security
    username: str = Field(min_length=1, max_length=320)
    poll_interval: int = Field(default=60, ge=10, le=86400, description="Seconds between polls.")


def _refuse_plaintext(security: str, options: CommonOptions) -> None:
    if security == "none" and not options.allow_plaintext:
        raise ValueError(
            "security none sends the password unencrypted: choose tls or starttls, or set "
            "options.allow_plaintext to true (local testing only)"
        )


class ImapSourceCreate(SourceBase):
    protocol: Literal["imap"]
    password: Password
    options: ImapOptions = Field(default_factory=ImapOptions)

    @model_validator(mode="after")
    def _plaintext_needs_consent(self) -> ImapSourceCreate:
        _refuse_plaintext(self.security, self.options)
        return self


class Pop3SourceCreate(SourceBase):
    protocol: Literal["pop3"]
    password: Password
    options: Pop3Options = Field(default_factory=Pop3Options)

    @model_validator(mode="after")
    def _plaintext_needs_consent(self) -> Pop3SourceCreate:
        _refuse_plaintext(self.security, self.options)
        return self


SourceCreate = Annotated[ImapSourceCreate | Pop3SourceCreate, Field(discriminator="protocol")]


class SourceUpdate(Model):
    """Only the fields given change; options replace the stored ones as a whole."""

    host: str | None = Field(default=None, min_length=1, max_length=255)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = Field(default=None, min_length=1, max_length=320)
    password: Password | None = None
    poll_interval: int | None = Field(default=None, ge=10, le=86400)
    enabled: bool | None = None
    options: dict[str, object] | None = Field(
        default=None, description="ImapOptions or Pop3Options, by the source's protocol."
    )


class SourceWarningPublic(Model):
    code: WarningCode
    message: str


class SourceStatus(Model):
    state: SourceState
    syncing: bool
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_class: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_run_at: datetime | None
    messages_fetched: int
    bytes_fetched: int
    budget_bytes_used: int
    budget_bytes_limit: int = Field(description="0: no limit.")
    folders: list[str]


class SourcePublic(SourceBase):
    id: int
    protocol: Literal["imap", "pop3"]
    enabled: bool
    options: dict[str, object]
    status: SourceStatus
    warnings: list[SourceWarningPublic]


class SyncRunPublic(Model):
    finished_at: datetime
    seconds: float
    fetched: int
    bytes: int
    error_class: str | None


class SyncQueued(Model):
    queued: bool
    detail: str


class StepPublic(Model):
    step: CheckStep
    seconds: float


class ConnectionTestResult(Model):
    ok: bool
    failed_step: FailedStep | None = Field(
        description="dns, tcp, timeout, tls (handshake), certificate, authentication or "
        "protocol; null when every step passed."
    )
    message: str
    steps: list[StepPublic] = Field(description="The steps that passed, in order.")
    folders: list[str] = Field(description="IMAP: the folders the account has.")
    messages: int | None = Field(description="POP3: messages waiting on the server.")


# --- settings suggestion ----------------------------------------------------------------------


class ServerSettingPublic(Model):
    protocol: ServerProtocol
    host: str
    port: int
    security: Security
    username: str


class SuggestionPublic(Model):
    address: str
    origin: Origin = Field(
        description="provider (built-in table), autoconfig, srv (RFC 6186), guess, or none."
    )
    servers: list[ServerSettingPublic]


# --- identities and tokens --------------------------------------------------------------------


class IdentityPublic(Model):
    """An identity as its owner sees it: relay settings, never the relay secret."""

    id: int
    address: str
    display_name: str
    is_default: bool
    source_id: int | None
    relay_host: str
    relay_port: int
    relay_security: RelaySecurity
    relay_username: str
    has_relay_secret: bool = Field(
        description="true: the identity has a relay password of its own (never shown); "
        "false: the source's password is used."
    )
    relay_options: dict[str, object]
    save_to_source_sent: bool


class TokenCreate(Model):
    name: str = Field(min_length=1, max_length=100)


class TokenPublic(Model):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="Shown this once; only its hash is stored.")


# --- outbound queue ---------------------------------------------------------------------------


class QueuedMessagePublic(Model):
    id: int
    user_id: int
    user_name: str
    sender: str
    recipients: list[str]
    size: int
    state: QueueState = Field(
        description="queued (waiting for its first try), deferred (a try failed; waiting for "
        "the next), relayed (accepted upstream; Sent copy pending) or bounced."
    )
    attempts: int
    next_attempt_at: datetime | None = Field(description="null once bounced.")
    expires_at: datetime
    created_at: datetime
    last_error: str | None


SessionPublic.model_rebuild()
