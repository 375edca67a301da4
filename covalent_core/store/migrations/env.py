"""Alembic environment: runs on the connection that covalent-core hands it."""

from __future__ import annotations

from alembic import context

from covalent_core.store.schema import metadata

connection = context.config.attributes.get("connection")


def run() -> None:
    if connection is None:
        from sqlalchemy import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
