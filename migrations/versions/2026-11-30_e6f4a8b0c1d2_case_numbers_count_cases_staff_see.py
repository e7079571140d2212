"""case numbers count the cases staff see

Revision ID: e6f4a8b0c1d2
Revises: d5e3f7a9b0c1
Create Date: 2026-11-30 21:10:00

A conversation gets its case number the first time staff see it (a question, a handoff, a
draft, a failure), from a counter row locked until the transaction commits: numbers count the
cases staff see, without gaps. Numbers already given stay; the counter continues after them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e6f4a8b0c1d2"
down_revision = "d5e3f7a9b0c1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_counter",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last", sa.Integer(), nullable=False),
    )
    op.execute("INSERT INTO case_counter (id, last) "
               "SELECT 1, COALESCE(MAX(case_number), 0) FROM conversations")


def downgrade() -> None:
    op.drop_table("case_counter")
