"""Users, sources and identities read through the bare DBAPI driver, for the listing commands.

Importing SQLAlchemy, SQLModel and building the table models costs `gateway user list` ~0.5 s
of its ~0.75 s (issue 16 asks for well under 0.5 s); the listing itself is a few SELECTs. So
these commands read with sqlite3 or psycopg directly and return the same `UserInfo`,
`SourceInfo` and `IdentityInfo` as `MailStore`, which a test compares on both backends.
Anything unusual (no database yet, a schema that needs migrating, another driver) is left to
the full store: `open_listing_reader` then returns None.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.store.errors import NotFoundError
from gateway.store.migrations import head_revision
from gateway.store.table_names import IDENTITIES, SCHEMA_VERSION_QUERY, SOURCES, USERS
from gateway.store.views import IdentityInfo, SourceInfo, UserInfo, credentials_tag

if TYPE_CHECKING:
    from gateway.settings import Settings

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIX = "postgresql+psycopg://"

_USER_COLUMNS = ("id", "name", "is_admin", "dedupe_across_sources", "created_at")
_SOURCE_COLUMNS = (
    "id",
    "user_id",
    "name",
    "protocol",
    "host",
    "port",
    "security",
    "username",
    "options_json",
    "poll_interval",
    "enabled",
    "last_attempt_at",
    "last_success_at",
    "last_error",
    "last_error_class",
    "consecutive_failures",
    "next_run_at",
    "messages_fetched",
    "bytes_fetched",
    "removals_not_propagated",
    "secret_ciphertext",
    "auth_method",
    "oauth_provider",
    "oauth_scopes",
)
_USERS_SQL = f"SELECT {', '.join(_USER_COLUMNS)} FROM {USERS}"  # noqa: S608 - constants
_SOURCES_SQL = (
    f"SELECT {', '.join(f's.{c}' for c in _SOURCE_COLUMNS)}, u.name"  # noqa: S608 - constants
    f" FROM {SOURCES} s JOIN {USERS} u ON u.id = s.user_id"
)
_IDENTITY_COLUMNS = (
    "id",
    "user_id",
    "address",
    "display_name",
    "source_id",
    "is_default",
    "relay_host",
    "relay_port",
    "relay_security",
    "relay_username",
    "relay_secret_ciphertext IS NOT NULL",
    "relay_options_json",
    "save_to_source_sent",
)
_IDENTITIES_SQL = f"SELECT {', '.join(_IDENTITY_COLUMNS)} FROM {IDENTITIES}"  # noqa: S608


class Listings(Protocol):
    """What the listing commands read: `ListingReader`, or `MailStore` when it must be used."""

    def list_users(self) -> list[UserInfo]: ...

    def get_user(self, *, name: str) -> UserInfo: ...

    def list_sources(self, *, user_id: int | None = None) -> list[SourceInfo]: ...

    def list_identities(self, *, user_id: int) -> list[IdentityInfo]: ...


class ListingReader:
    """Read-only queries on one DBAPI connection of the driver whose module is `driver`."""

    def __init__(self, connection: Any, driver: Any) -> None:
        self._connection = connection
        self._errors: type[Exception] = driver.Error
        # The drivers' parameter styles: sqlite3 "qmark", psycopg "format"/"pyformat".
        self._placeholder = "?" if driver.paramstyle == "qmark" else "%s"

    def list_users(self) -> list[UserInfo]:
        return [_user(row) for row in self._rows(f"{_USERS_SQL} ORDER BY name", ())]

    def get_user(self, *, name: str) -> UserInfo:
        rows = self._rows(f"{_USERS_SQL} WHERE name = {self._placeholder}", (name,))
        if not rows:
            raise NotFoundError(f"no such user: {name}")
        return _user(rows[0])

    def list_sources(self, *, user_id: int | None = None) -> list[SourceInfo]:
        where, params = ("", ()) if user_id is None else (" WHERE s.user_id = {}", (user_id,))
        sql = f"{_SOURCES_SQL}{where.format(self._placeholder)} ORDER BY s.user_id, s.name"
        return [_source(row) for row in self._rows(sql, params)]

    def list_identities(self, *, user_id: int) -> list[IdentityInfo]:
        sql = f"{_IDENTITIES_SQL} WHERE user_id = {self._placeholder} ORDER BY address"
        return [_identity(row) for row in self._rows(sql, (user_id,))]

    def schema_revision(self) -> list[str] | None:
        """The revisions alembic_version holds; None without that table (no schema yet)."""
        try:
            return [row[0] for row in self._rows(SCHEMA_VERSION_QUERY, ())]
        except self._errors:
            return None

    def close(self) -> None:
        self._connection.close()

    def _rows(self, sql: str, params: Sequence[object]) -> list[Any]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def open_listing_reader(settings: Settings) -> ListingReader | None:
    """A reader of the configured database if its schema is at the newest revision; None
    when the full store must handle it (it creates and migrates)."""
    reader = _connect(settings.resolved_database_url())
    if reader is None:
        return None
    head = head_revision()
    if head is None or reader.schema_revision() != [head]:
        reader.close()
        return None
    return reader


def _connect(url: str) -> ListingReader | None:
    if url.startswith(SQLITE_PREFIX):
        path = url[len(SQLITE_PREFIX) :]
        # URL quoting, options, in-memory and URI file names: SQLAlchemy's to interpret.
        if not path or any(mark in path for mark in "%?") or path.startswith((":", "file:")):
            return None
        if not Path(path).is_file():
            return None  # sqlite3 would create it; the full store also sets its mode
        import sqlite3

        connection = sqlite3.connect(path, timeout=30)
        connection.execute("PRAGMA query_only=ON")
        return ListingReader(connection, sqlite3)
    if url.startswith(POSTGRES_PREFIX):
        import psycopg

        # The same URL without "+psycopg" is a libpq URI with the same meaning: SQLAlchemy
        # hands the user, password, host, port, database and query options to psycopg too.
        conninfo = "postgresql://" + url[len(POSTGRES_PREFIX) :]
        return ListingReader(psycopg.connect(conninfo, autocommit=True), psycopg)
    return None


def _timestamp(value: datetime | str | None) -> datetime | None:
    """As `UTCDateTime` reads it: SQLite stores naive UTC text, PostgreSQL timestamptz."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _required_timestamp(value: datetime | str) -> datetime:
    parsed = _timestamp(value)
    assert parsed is not None  # noqa: S101 - a NOT NULL column
    return parsed


def _user(row: Sequence[Any]) -> UserInfo:
    user_id, name, is_admin, dedupe, created_at = row
    return UserInfo(
        id=user_id,
        name=name,
        is_admin=bool(is_admin),
        dedupe_across_sources=bool(dedupe),
        created_at=_required_timestamp(created_at),
    )


def _source(row: Sequence[Any]) -> SourceInfo:
    values = dict(zip((*_SOURCE_COLUMNS, "user_name"), row, strict=True))
    return SourceInfo(
        user_name=values["user_name"],
        id=values["id"],
        user_id=values["user_id"],
        name=values["name"],
        protocol=values["protocol"],
        host=values["host"],
        port=values["port"],
        security=values["security"],
        username=values["username"],
        options=json.loads(values["options_json"]),
        poll_interval=values["poll_interval"],
        enabled=bool(values["enabled"]),
        last_attempt_at=_timestamp(values["last_attempt_at"]),
        last_success_at=_timestamp(values["last_success_at"]),
        last_error=values["last_error"],
        last_error_class=values["last_error_class"],
        consecutive_failures=values["consecutive_failures"],
        next_run_at=_timestamp(values["next_run_at"]),
        messages_fetched=values["messages_fetched"],
        bytes_fetched=values["bytes_fetched"],
        removals_not_propagated=values["removals_not_propagated"],
        credentials_tag=credentials_tag(bytes(values["secret_ciphertext"])),
        auth_method=values["auth_method"],
        oauth_provider=values["oauth_provider"],
        oauth_scopes=values["oauth_scopes"],
    )


def _identity(row: Sequence[Any]) -> IdentityInfo:
    (
        identity_id,
        user_id,
        address,
        display_name,
        source_id,
        is_default,
        relay_host,
        relay_port,
        relay_security,
        relay_username,
        has_relay_secret,
        relay_options_json,
        save_to_source_sent,
    ) = row
    return IdentityInfo(
        id=identity_id,
        user_id=user_id,
        address=address,
        display_name=display_name,
        source_id=source_id,
        is_default=bool(is_default),
        relay_host=relay_host,
        relay_port=relay_port,
        relay_security=relay_security,
        relay_username=relay_username,
        has_relay_secret=bool(has_relay_secret),
        relay_options=json.loads(relay_options_json),
        save_to_source_sent=bool(save_to_source_sent),
    )
