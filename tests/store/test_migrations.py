"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from livetrain.store.metadata import MIGRATIONS, Base, MetadataStore


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'schema.db'}"
    return request.getfixturevalue("postgres_url")


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def test_a_new_database_is_migrated_to_the_head_revision(database_url):
    store = MetadataStore(database_url)
    store.create_schema()
    with store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
        assert set(Base.metadata.tables) <= set(inspect(connection).get_table_names())
    store.close()


def test_models_and_migrations_agree(database_url):
    # A model changed without a migration (or the other way round) fails here.
    store = MetadataStore(database_url)
    store.create_schema()
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    store.close()
    assert differences == []


def test_migrating_again_keeps_the_data(database_url):
    store = MetadataStore(database_url)
    store.create_schema()
    store.register_server("host:1:abc")
    store.create_schema()
    assert store.live_servers(max_age=60) == {"host:1:abc"}
    store.close()


def test_servers_starting_together_migrate_once(postgres_url):
    import threading

    stores = [MetadataStore(postgres_url) for _ in range(3)]
    errors = []

    def migrate(store):
        try:
            store.create_schema()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with stores[0].engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
    for store in stores:
        store.close()
