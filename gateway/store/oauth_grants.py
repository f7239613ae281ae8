"""OAuth2 sources' tokens at rest: refresh and access tokens encrypted like passwords.

The refresh token lives in `secret_ciphertext` (so key rotation and "never returned" cover it
as they cover passwords); the access token and its expiry are cached next to it, so every
replica uses one token until it nears expiry instead of each refreshing its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text, update
from sqlmodel import col

from gateway.store.base import StoreBase, source_view
from gateway.store.errors import InvalidOperationError, NotFoundError
from gateway.store.models import ServerState, Source, User
from gateway.store.secrets_box import SecretBox
from gateway.store.views import OAuthGrant, SourceInfo


@dataclass(frozen=True)
class OAuthTokens:
    """A provider's answer at the token endpoint, for storing: secrets hidden from repr."""

    provider: str
    scopes: str
    access_token: str = field(repr=False)
    expires_at: datetime | None
    # None: the provider kept the old refresh token (Google does; Microsoft rotates).
    refresh_token: str | None = field(default=None, repr=False)


def apply_oauth_tokens(source: Source, tokens: OAuthTokens, secrets: SecretBox) -> None:
    """Write a grant's tokens into a source row (encrypted)."""
    source.auth_method = "oauth2"
    source.oauth_provider = tokens.provider
    source.oauth_scopes = tokens.scopes
    if tokens.refresh_token is not None:
        source.secret_ciphertext = secrets.encrypt(tokens.refresh_token)
    source.oauth_access_ciphertext = secrets.encrypt(tokens.access_token)
    source.oauth_access_expires_at = tokens.expires_at


# pg_advisory_xact_lock(namespace, source id): the namespace keeps these locks apart from any
# other advisory lock (the migration lock uses the one-key form).
_REFRESH_LOCK_NAMESPACE = 0x6F61  # "oa"


class OAuthGrantOperations(StoreBase):
    @contextmanager
    def oauth_refresh_lock(self, *, source_id: int) -> Iterator[None]:
        """Held while one process refreshes a source's tokens. Replicas on PostgreSQL take
        turns on a transaction-level advisory lock: two refreshing with the same rotated
        refresh token at once would make the provider revoke the whole grant. Callers re-read
        the grant inside it, since the other replica may have refreshed meanwhile. SQLite
        means one host; the caller's per-process lock covers its threads."""
        if self.database.is_sqlite:
            yield
            return
        with self.database.engine.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :source_id)"),
                {"namespace": _REFRESH_LOCK_NAMESPACE, "source_id": source_id},
            )
            yield

    def seal(self, text: str) -> str:
        """Encrypt and authenticate `text` for a browser to hold (the pending OAuth2 sign-in)."""
        return self._secrets.encrypt(text).decode("ascii")

    def unseal(self, sealed: str, *, max_age_seconds: int) -> str | None:
        """What `seal` returned, if untouched and young enough; else None."""
        return self._secrets.decrypt_recent(sealed.encode("ascii"), max_age_seconds=max_age_seconds)

    def read_oauth_grant(self, *, source_id: int) -> OAuthGrant:
        """The source's tokens, decrypted; never log or return them to clients."""
        with self.database.read() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            if source.auth_method != "oauth2" or source.oauth_provider is None:
                raise InvalidOperationError(f"source {source_id} does not log in with OAuth2")
            access = source.oauth_access_ciphertext
            return OAuthGrant(
                source_id=source_id,
                provider=source.oauth_provider,
                scopes=source.oauth_scopes,
                refresh_token=self._secrets.decrypt(source.secret_ciphertext),
                access_token=self._secrets.decrypt(access) if access is not None else None,
                access_expires_at=source.oauth_access_expires_at,
            )

    def save_oauth_tokens(self, *, source_id: int, tokens: OAuthTokens) -> None:
        """Store the tokens a refresh returned. A rotated refresh token must be saved before
        it is used: replaying the old one makes providers revoke the whole grant."""
        with self.database.write() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            apply_oauth_tokens(source, tokens, self._secrets)
            session.add(source)

    def reconnect_oauth_source(self, *, source_id: int, tokens: OAuthTokens) -> SourceInfo:
        """A new grant for an existing source (after "reconnect needed", or from password to
        OAuth2): it syncs again at once with a clean failure count."""
        if tokens.refresh_token is None:
            raise InvalidOperationError("the provider returned no refresh token")
        with self.database.write() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise NotFoundError(f"no such source id: {source_id}")
            apply_oauth_tokens(source, tokens, self._secrets)
            source.next_run_at = None
            source.consecutive_failures = 0
            source.last_error = None
            source.last_error_class = None
            session.add(source)
            session.flush()
            session.execute(
                update(ServerState).values(sources_revision=col(ServerState.sources_revision) + 1)
            )
            owner = session.get(User, source.user_id)
            return source_view(source, owner.name if owner is not None else "")
