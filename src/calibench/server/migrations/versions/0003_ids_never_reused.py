"""Ids are never reused: AUTOINCREMENT on SQLite's tables.

Without it SQLite gives a new row the id of the last row deleted, so a stale link (a bookmark, a
job's log) opens another dataset or project. SQLite cannot add AUTOINCREMENT to a table, so each
table is made again (batch mode) with its rows. PostgreSQL's sequences never reuse an id: there
this revision does nothing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("models", "datasets", "projects", "jobs")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
