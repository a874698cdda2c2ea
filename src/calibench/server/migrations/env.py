"""Alembic environment: the engine comes from ``calibench.server.migrate``, never from a file."""

from __future__ import annotations

from alembic import context

from calibench.server.db import Base

engine = context.config.attributes["engine"]
sqlite = engine.dialect.name == "sqlite"
with engine.connect() as connection:
    if sqlite:
        # A table made again (batch mode) replaces the old one, which other tables' foreign keys
        # name: SQLite's own recipe turns the checks off meanwhile (only possible outside a
        # transaction) and checks every key once the tables are in place.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
