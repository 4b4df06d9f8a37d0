"""Alembic environment for livetrain's metadata database.

`MetadataStore.create_schema()` runs the migrations programmatically, handing a connection
in through `config.attributes["connection"]`. By hand, from the repository root:

    alembic -x url=sqlite:///livetrain.db -c src/livetrain/store/migrations/alembic.ini upgrade head
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from livetrain.store.metadata import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    # batch mode lets later migrations alter tables on SQLite too (it copies the table)
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
