"""Identities: the addresses a user may send as, and how mail from each is relayed.

A source whose login is an address is an identity of its owner from the moment it is added
(`identity_for_new_source`); aliases are added by hand. Relay settings default from the
source and the provider (`gateway.mail_providers`); the relay secret is encrypted like a
source's, and an identity without one logs in with its source's secret.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.mail_providers import relay_defaults
from gateway.store.base import StoreBase, source_view
from gateway.store.errors import AlreadyExistsError, InvalidOperationError, NotFoundError
from gateway.store.models import Identity, Source
from gateway.store.views import IdentityInfo, RelayTarget

RELAY_SECURITY_MODES = ("tls", "starttls", "none")


def normalize_address(address: str) -> str:
    """Addresses compare case-insensitively here (as every provider treats them)."""
    return address.strip().lower()


def _check_address(address: str) -> None:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or ord(c) < 32 for c in address):
        raise InvalidOperationError(f"not an email address: {address!r}")


def _check_relay(host: str, port: int, security: str) -> None:
    if security not in RELAY_SECURITY_MODES:
        raise InvalidOperationError(
            f"relay security must be one of {', '.join(RELAY_SECURITY_MODES)}"
        )
    if not host or len(host) > 255:
        raise InvalidOperationError("relay host must be 1-255 characters")
    if not 1 <= port <= 65535:
        raise InvalidOperationError("relay port must be 1-65535")


def identity_for_new_source(source: Source) -> Identity | None:
    """The identity a new source brings (None when its login is not an address)."""
    address = normalize_address(source.username)
    if "@" not in address:
        return None
    assert source.id is not None  # noqa: S101
    defaults = relay_defaults(address)
    return Identity(
        user_id=source.user_id,
        address=address,
        source_id=source.id,
        relay_host=defaults.host,
        relay_port=defaults.port,
        relay_security=defaults.security,
        relay_username=source.username,
        relay_options_json=json.dumps(_relay_options_from(json.loads(source.options_json))),
        save_to_source_sent=source.protocol == "imap" and not defaults.saves_sent_copy,
    )


def _relay_options_from(source_options: dict[str, Any]) -> dict[str, Any]:
    # Trust settings of the account usually hold for its provider's SMTP server too.
    keys = ("tls_ca_file", "timeout_seconds")
    return {key: source_options[key] for key in keys if key in source_options}


class IdentityOperations(StoreBase):
    def add_identity(
        self,
        *,
        user_id: int,
        address: str,
        display_name: str = "",
        source_id: int | None = None,
        is_default: bool = False,
        relay_host: str | None = None,
        relay_port: int | None = None,
        relay_security: str | None = None,
        relay_username: str | None = None,
        relay_secret: str | None = None,
        relay_options: dict[str, Any] | None = None,
        save_to_source_sent: bool | None = None,
    ) -> IdentityInfo:
        """Add an address the user may send as; unset relay settings default from the source
        (its login and secret) and the provider (host, port, security)."""
        address = normalize_address(address)
        _check_address(address)
        defaults = relay_defaults(address)
        try:
            with self.database.write() as session:
                source = self._owned_source(session, user_id, source_id)
                identity = Identity(
                    user_id=user_id,
                    address=address,
                    display_name=display_name,
                    source_id=source_id,
                    is_default=is_default,
                    relay_host=relay_host or defaults.host,
                    relay_port=relay_port or defaults.port,
                    relay_security=relay_security or defaults.security,
                    relay_username=(
                        relay_username
                        if relay_username is not None
                        else (source.username if source else address)
                    ),
                    relay_secret_ciphertext=(
                        self._secrets.encrypt(relay_secret) if relay_secret else None
                    ),
                    relay_options_json=json.dumps(
                        relay_options
                        if relay_options is not None
                        else _relay_options_from(json.loads(source.options_json) if source else {}),
                        sort_keys=True,
                    ),
                    save_to_source_sent=(
                        save_to_source_sent
                        if save_to_source_sent is not None
                        else bool(source and source.protocol == "imap")
                        and not defaults.saves_sent_copy
                    ),
                )
                _check_relay(identity.relay_host, identity.relay_port, identity.relay_security)
                session.add(identity)
                session.flush()
                return identity_view(identity)
        except IntegrityError as error:
            raise AlreadyExistsError(f"identity already exists: {address}") from error

    def list_identities(self, *, user_id: int) -> list[IdentityInfo]:
        with self.database.read() as session:
            rows = session.exec(
                select(Identity).where(Identity.user_id == user_id).order_by(Identity.address)
            )
            return [identity_view(identity) for identity in rows]

    def find_identity(self, *, user_id: int, address: str) -> IdentityInfo | None:
        """The user's identity for `address` (any case), or None: the open-relay check."""
        with self.database.read() as session:
            identity = session.exec(
                select(Identity).where(
                    Identity.user_id == user_id, Identity.address == normalize_address(address)
                )
            ).first()
            return identity_view(identity) if identity is not None else None

    def remove_identity(
        self, *, user_id: int, identity_id: int | None = None, address: str | None = None
    ) -> None:
        """Forget one of the user's addresses, by id (the API) or by address (the CLI);
        another user's is "not found". Queued mail from it can no longer be relayed."""
        with self.database.write() as session:
            session.delete(_owned_identity(session, user_id, identity_id, address))

    def update_identity(
        self,
        *,
        user_id: int,
        identity_id: int | None = None,
        address: str | None = None,
        display_name: str | None = None,
        relay_host: str | None = None,
        relay_port: int | None = None,
        relay_security: str | None = None,
        relay_username: str | None = None,
        relay_secret: str | None = None,
        use_source_secret: bool = False,
        relay_options: dict[str, Any] | None = None,
        save_to_source_sent: bool | None = None,
    ) -> IdentityInfo:
        """Change one of the user's identities (by id or address); what is None stays.

        The relay secret is write-only: None keeps the stored one, `use_source_secret`
        forgets it so the source's secret logs in again."""
        if relay_secret is not None and use_source_secret:
            raise InvalidOperationError("give a relay secret or use the source's, not both")
        with self.database.write() as session:
            identity = _owned_identity(session, user_id, identity_id, address)
            changes: dict[str, object] = {
                "display_name": display_name,
                "relay_host": relay_host,
                "relay_port": relay_port,
                "relay_security": relay_security,
                "relay_username": relay_username,
                "save_to_source_sent": save_to_source_sent,
            }
            for name, value in changes.items():
                if value is not None:
                    setattr(identity, name, value)
            if relay_options is not None:
                identity.relay_options_json = json.dumps(relay_options, sort_keys=True)
            if relay_secret:
                identity.relay_secret_ciphertext = self._secrets.encrypt(relay_secret)
            elif use_source_secret:
                identity.relay_secret_ciphertext = None
            _check_relay(identity.relay_host, identity.relay_port, identity.relay_security)
            session.add(identity)
            session.flush()
            return identity_view(identity)

    def read_relay_target(self, *, identity_id: int) -> RelayTarget:
        """Relay settings with the decrypted secret; never log or return it to clients."""
        with self.database.read() as session:
            identity = session.get(Identity, identity_id)
            if identity is None:
                raise NotFoundError(f"no such identity id: {identity_id}")
            source = session.get(Source, identity.source_id) if identity.source_id else None
            if identity.relay_secret_ciphertext is not None:
                secret = self._secrets.decrypt(identity.relay_secret_ciphertext)
            elif source is not None:
                secret = self._secrets.decrypt(source.secret_ciphertext)
            else:
                secret = ""
            assert identity.id is not None  # noqa: S101
            sent_copy = (
                source_view(source, "")
                if source is not None and identity.save_to_source_sent and source.protocol == "imap"
                else None
            )
            return RelayTarget(
                identity_id=identity.id,
                address=identity.address,
                host=identity.relay_host,
                port=identity.relay_port,
                security=identity.relay_security,
                username=identity.relay_username,
                secret=secret,
                options=json.loads(identity.relay_options_json),
                sent_copy_source=sent_copy,
            )

    @staticmethod
    def _owned_source(session: Session, user_id: int, source_id: int | None) -> Source | None:
        if source_id is None:
            return None
        source = session.exec(
            select(Source).where(col(Source.id) == source_id, Source.user_id == user_id)
        ).first()
        if source is None:
            raise NotFoundError(f"no such source id for this user: {source_id}")
        return source


def _owned_identity(
    session: Session, user_id: int, identity_id: int | None, address: str | None
) -> Identity:
    """The user's identity by id or by address; another user's is "not found"."""
    if (identity_id is None) == (address is None):
        raise InvalidOperationError("name the identity by id or by address")
    query = select(Identity).where(Identity.user_id == user_id)
    if identity_id is not None:
        query = query.where(col(Identity.id) == identity_id)
    else:
        query = query.where(Identity.address == normalize_address(address or ""))
    identity = session.exec(query).first()
    if identity is None:
        raise NotFoundError(f"no such identity: {identity_id or address}")
    return identity


def identity_view(identity: Identity) -> IdentityInfo:
    assert identity.id is not None  # noqa: S101
    return IdentityInfo(
        id=identity.id,
        user_id=identity.user_id,
        address=identity.address,
        display_name=identity.display_name,
        source_id=identity.source_id,
        is_default=identity.is_default,
        relay_host=identity.relay_host,
        relay_port=identity.relay_port,
        relay_security=identity.relay_security,
        relay_username=identity.relay_username,
        has_relay_secret=identity.relay_secret_ciphertext is not None,
        relay_options=json.loads(identity.relay_options_json),
        save_to_source_sent=identity.save_to_source_sent,
    )
