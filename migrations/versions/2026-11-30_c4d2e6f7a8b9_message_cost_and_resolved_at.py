"""model call cost per message; when a case was resolved

Revision ID: c4d2e6f7a8b9
Revises: b3f1c2d4e5a6
Create Date: 2026-11-30 21:00:00

Every stored model result gains what the call cost in USD (litellm's cost table; 0 for a model
the table does not know), beside the prompt and completion tokens it already keeps. Rows from
before stay null: the report counts them as unpriced, not as free. Conversations gain when
they were resolved; resolved cases from before take the time of their last "case resolved"
assignment change where there is one (a case the bot owned left none: it stays unknown).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4d2e6f7a8b9"
down_revision = "b3f1c2d4e5a6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        """
        UPDATE conversations SET resolved_at = (
            SELECT MAX(changes.created_at) FROM assignment_changes AS changes
            WHERE changes.conversation_id = conversations.id
              AND changes.reason = 'case resolved')
        WHERE status = 'resolved'
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("resolved_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("cost_usd")
