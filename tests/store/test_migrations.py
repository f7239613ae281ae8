"""Alembic migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from gateway.settings import Settings
from gateway.store.migrations import alembic_config, current_revision, upgrade_database
from gateway.store.models import SQLModel


def test_migrations_match_models_and_are_idempotent(backend_settings: Settings) -> None:
    url = backend_settings.resolved_database_url()
    backend_settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(url)
    upgrade_database(url)  # a second run is a no-op
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None and current_revision(url) == head
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
            assert diff == [], f"models and migrations disagree: {diff}"
            state = connection.execute(text("SELECT next_uidvalidity FROM server_state")).all()
            assert len(state) == 1 and state[0][0] > 1_700_000_000
    finally:
        engine.dispose()
