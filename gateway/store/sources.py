"""External account (source) operations; the secret is encrypted here and nowhere else."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.store.base import StoreBase, source_view
from gateway.store.errors import AlreadyExistsError, InvalidOperationError, NotFoundError
from gateway.store.identities import identity_for_new_source
from gateway.store.ingest import OriginKey, find_origins
from gateway.store.models import Identity, Origin, ServerState, Source, User
from gateway.store.oauth_grants import OAuthTokens, apply_oauth_tokens
from gateway.store.views import SourceInfo

PROTOCOLS = ("imap", "pop3")
SECURITY_MODES = ("tls", "starttls", "none")
MIN_POLL_INTERVAL = 10


def _validate_source(
    *, name: str, protocol: str, host: str, port: int, security: str, interval: int
) -> None:
    if not name or len(name) > 255 or "/" in name:
        raise InvalidOperationError("source name must be 1-255 characters without '/'")
    if protocol not in PROTOCOLS:
        raise InvalidOperationError(f"protocol must be one of {', '.join(PROTOCOLS)}")
    if security not in SECURITY_MODES:
        raise InvalidOperationError(f"security must be one of {', '.join(SECURITY_MODES)}")
    if not host or len(host) > 255:
        raise InvalidOperationError("host must be 1-255 characters")
    if not 1 <= port <= 65535:
        raise InvalidOperationError("port must be 1-65535")
    if interval < MIN_POLL_INTERVAL:
        raise InvalidOperationError(f"interval must be at least {MIN_POLL_INTERVAL} seconds")


class SourceOperations(StoreBase):
    def add_source(
        self,
        *,
        user_id: int,
        name: str,
        protocol: str,
        host: str,
        port: int,
        security: str,
        username: str,
        secret: str,
        poll_interval: int = 60,
        options: dict[str, Any] | None = None,
        oauth: OAuthTokens | None = None,
    ) -> SourceInfo:
        """Register an external account; the secret is stored encrypted only.

        With `oauth` the source logs in with OAuth2 and `secret` is the refresh token."""
        _validate_source(
            name=name,
            protocol=protocol,
            host=host,
            port=port,
            security=security,
            interval=poll_interval,
        )
        try:
            with self.database.write() as session:
                source = Source(
                    user_id=user_id,
                    name=name,
                    protocol=protocol,
                    host=host,
                    port=port,
                    security=security,
                    username=username,
                    secret_ciphertext=self._secrets.encrypt(secret),
                    options_json=json.dumps(options or {}, sort_keys=True),
                    poll_interval=poll_interval,
                )
                if oauth is not None:
                    apply_oauth_tokens(source, oauth, self._secrets)
                session.add(source)
                session.flush()
                # A source's own address is an identity of its user (issue 18), unless the
                # user already added it by hand.
                identity = identity_for_new_source(source)
                if identity is not None and not _has_identity(session, identity):
                    session.add(identity)
                _bump_sources_revision(session)
                return source_view(source, _owner_name(session, user_id))
        except IntegrityError as error:
            raise AlreadyExistsError(f"source already exists: {name}") from error

    def update_source(
        self,
        *,
        source_id: int,
        name: str | None = None,
        host: str | None = None,
        port: int | None = None,
        security: str | None = None,
        username: str | None = None,
        poll_interval: int | None = None,
        enabled: bool | None = None,
        options: dict[str, Any] | None = None,
    ) -> SourceInfo:
        """Change a source's settings (None: unchanged; `options` replaces them all).

        A changed source is due at once and starts with a clean failure count: whatever
        failed may have been what just changed.
        """
        try:
            with self.database.write() as session:
                source = session.get(Source, source_id)
                if source is None:
                    raise NotFoundError(f"no such source id: {source_id}")
                _validate_source(
                    name=source.name if name is None else name,
                    protocol=source.protocol,
                    host=source.host if host is None else host,
                    port=source.port if port is None else port,
                    security=source.security if security is None else security,
                    interval=source.poll_interval if poll_interval is None else poll_interval,
                )
                changes: dict[str, Any] = {
                    "name": name,
                    "host": host,
                    "port": port,
                    "security": security,
                    "username": username,
                    "poll_interval": poll_interval,
                    "enabled": enabled,
                }
                for field, value in changes.items():
                    if value is not None:
                        setattr(source, field, value)
                if options is not None:
                    source.options_json = json.dumps(options, sort_keys=True)
                source.next_run_at = None
                source.consecutive_failures = 0
                session.add(source)
                session.flush()
                _bump_sources_revision(session)
                return source_view(source, _owner_name(session, source.user_id))
        except IntegrityError as error:
            raise AlreadyExistsError(f"source already exists: {name}") from error

    def set_source_secret(self, *, source_id: int, secret: str) -> SourceInfo:
        """Store a new password (encrypted); a source stopped because its login was refused
        (`SourceInfo.credentials_rejected`) syncs again at once."""
        with self.database.write() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            source.secret_ciphertext = self._secrets.encrypt(secret)
            # A password replaces an OAuth2 grant: the source logs in with it from now on.
            source.auth_method = "password"
            source.oauth_access_ciphertext = None
            source.oauth_access_expires_at = None
            source.next_run_at = None
            source.consecutive_failures = 0
            session.add(source)
            session.flush()
            _bump_sources_revision(session)
            return source_view(source, _owner_name(session, source.user_id))

    def sources_revision(self) -> int:
        """A number that changes whenever any source is added, changed or removed."""
        with self.database.read() as session:
            state = session.exec(select(ServerState)).first()
            return state.sources_revision if state is not None else 0

    def record_unpropagated_removals(self, *, source_id: int, count: int) -> None:
        """Count local deletions the source could not be made to carry out."""
        with self.database.write() as session:
            session.execute(
                update(Source)
                .where(col(Source.id) == source_id)
                .values(removals_not_propagated=col(Source.removals_not_propagated) + count)
            )

    def list_sources(self, *, user_id: int | None = None) -> list[SourceInfo]:
        with self.database.read() as session:
            query = (
                select(Source, User.name)
                .join(User, col(User.id) == col(Source.user_id))
                .order_by(col(Source.user_id), col(Source.name))
            )
            if user_id is not None:
                query = query.where(Source.user_id == user_id)
            return [source_view(source, owner) for source, owner in session.exec(query)]

    def get_source(self, *, user_name: str, name: str) -> SourceInfo:
        with self.database.read() as session:
            source = session.exec(
                select(Source)
                .join(User, col(User.id) == col(Source.user_id))
                .where(User.name == user_name, Source.name == name)
            ).first()
            if source is None:
                raise NotFoundError(f"no such source: {user_name}/{name}")
            return source_view(source, user_name)

    def get_source_by_id(self, *, source_id: int) -> SourceInfo:
        with self.database.read() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            return source_view(source, _owner_name(session, source.user_id))

    def read_source_secret(self, *, source_id: int) -> str:
        """Decrypt a source's secret for the fetcher; never log or return it to clients."""
        with self.database.read() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            return self._secrets.decrypt(source.secret_ciphertext)

    def rotate_source_secrets(self) -> int:
        """Re-encrypt every source's secret under the newest key (the first of
        GATEWAY_SECRET_KEY); returns how many. After it, older keys may be dropped."""
        with self.database.write() as session:
            sources = list(session.exec(select(Source)))
            for source in sources:
                source.secret_ciphertext = self._secrets.rotate(source.secret_ciphertext)
                if source.oauth_access_ciphertext is not None:
                    source.oauth_access_ciphertext = self._secrets.rotate(
                        source.oauth_access_ciphertext
                    )
                session.add(source)
        return len(sources)

    def remove_source(self, *, source_id: int) -> None:
        """Forget a source and its origins; messages it fetched stay in the mailbox."""
        with self.database.write() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            for origin in session.exec(select(Origin).where(Origin.source_id == source_id)):
                session.delete(origin)
            session.delete(source)
            _bump_sources_revision(session)

    def has_origin(
        self,
        *,
        source_id: int,
        uidl: str | None = None,
        remote_folder: str | None = None,
        uidvalidity: int | None = None,
        remote_uid: int | None = None,
    ) -> bool:
        """Whether a remote message was already ingested (the fetchers' skip check)."""
        origin = OriginKey(source_id, remote_folder, uidvalidity, remote_uid, uidl)
        with self.database.read() as session:
            return bool(find_origins(session, [origin]))

    def known_uidls(self, *, source_id: int) -> set[str]:
        """Every POP3 UIDL already ingested from a source, in one query."""
        with self.database.read() as session:
            rows = session.exec(
                select(Origin.uidl).where(
                    Origin.source_id == source_id, col(Origin.uidl).is_not(None)
                )
            )
            return {uidl for uidl in rows if uidl is not None}


def _has_identity(session: Session, identity: Identity) -> bool:
    return (
        session.exec(
            select(Identity.id).where(
                Identity.user_id == identity.user_id, Identity.address == identity.address
            )
        ).first()
        is not None
    )


def _bump_sources_revision(session: Session) -> None:
    session.execute(
        update(ServerState).values(sources_revision=col(ServerState.sources_revision) + 1)
    )


def _owner_name(session: Session, user_id: int) -> str:
    owner = session.get(User, user_id)
    return owner.name if owner is not None else ""
