"""Two projects' models timed side by side (Compare's timing of any two projects of one model).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pair_timings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "a_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "b_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pair_timings_a_id", "pair_timings", ["a_id"])
    op.create_index("ix_pair_timings_b_id", "pair_timings", ["b_id"])


def downgrade() -> None:
    op.drop_index("ix_pair_timings_b_id", "pair_timings")
    op.drop_index("ix_pair_timings_a_id", "pair_timings")
    op.drop_table("pair_timings")
