"""Names of the tables read without the ORM (`listing.py`); the models take theirs from here."""

from __future__ import annotations

USERS = "users"
SOURCES = "sources"
IDENTITIES = "identities"
# Alembic's own table: the revision the schema is at.
ALEMBIC_VERSION = "alembic_version"
SCHEMA_VERSION_QUERY = f"SELECT version_num FROM {ALEMBIC_VERSION}"  # noqa: S608 - constants
