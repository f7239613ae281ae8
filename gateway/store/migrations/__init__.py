"""Alembic migrations for the store schema, run programmatically at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

_HERE = Path(__file__).parent
_REVISION = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*"([^"]*)"', re.M)


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # late: alembic costs ~0.1 s to import, rarely needed

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    # "%" is interpolation syntax in alembic's config parser; URLs may contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the schema at `url` up to `revision` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    """The newest revision in `versions/`, read from the files without importing Alembic;
    None when the chain does not have exactly one head (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_HERE / "versions").glob("*.py"):
        found = dict((name, value) for name, value in _REVISION.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            if found.get("down_revision"):
                parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
