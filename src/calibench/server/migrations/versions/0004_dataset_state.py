"""Datasets carry a state: a large upload is imported by a job, and its dataset is not ready
until that job is done.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("state", sa.String(20), nullable=False, server_default="ready"))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("state")
