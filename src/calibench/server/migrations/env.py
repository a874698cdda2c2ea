"""Alembic environment: the engine comes from ``calibench.server.migrate``, never from a file."""

from __future__ import annotations

from alembic import context

from calibench.server.db import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
