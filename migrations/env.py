"""Alembic environment: runs on the connection handed over by dsiem_sql.store.database."""

from alembic import context

from dsiem_sql.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dsiem-sql db upgrade --db PATH`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
