"""Alembic environment: migrations run on a connection the product hands over (storage.db)."""

from alembic import context
from sqlalchemy import Connection

from storage.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through storage.db.upgrade or `intake db upgrade`")
run(connection)
