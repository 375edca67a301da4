"""The store's migrations: their head is the revision the code expects, and they build schema.py."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from covalent_core.store.db import HEAD_REVISION, MIGRATIONS_DIR, open_store
from covalent_core.store.schema import metadata


def test_the_code_expects_the_newest_migration():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_migrating_a_new_store_gives_exactly_the_declared_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    open_store(url)  # migrates to the head
    with create_engine(url).connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
