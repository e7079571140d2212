"""suggested answers on askHuman questions

Revision ID: d5e3f7a9b0c1
Revises: c4d2e6f7a8b9
Create Date: 2026-11-30 21:00:00

The model may give, with its question, the answer it would send if its guess is right; staff
send it with one click or edit it. What became of the suggestion (used as it was, edited, or
ignored for an answer of their own) is kept to count how often suggestions help.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d5e3f7a9b0c1"
down_revision = "c4d2e6f7a8b9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("human_requests") as batch:
        batch.add_column(sa.Column("suggested_answer", sa.Text(), nullable=True))
        batch.add_column(sa.Column("suggestion_outcome", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("human_requests") as batch:
        batch.drop_column("suggestion_outcome")
        batch.drop_column("suggested_answer")
