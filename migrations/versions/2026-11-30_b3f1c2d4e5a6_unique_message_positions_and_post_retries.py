"""unique message positions; outbox retry state

Revision ID: b3f1c2d4e5a6
Revises: 7de53237e04a
Create Date: 2026-11-30 19:30:00

Two messages of one conversation could get the same (order, step_order) when they arrived at
once; such rows are renumbered inside their turn (keeping their relative order) before the
position becomes unique. Outbox posts gain the state that lets them be retried for hours:
when the next attempt is due, and whether an earlier attempt may have reached Slack.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b3f1c2d4e5a6"
down_revision = "7de53237e04a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE messages SET step_order = renumbered.position
        FROM (
            SELECT id, ROW_NUMBER() OVER (
                PARTITION BY conversation_id, "order" ORDER BY step_order, id) - 1 AS position
            FROM messages
            WHERE (conversation_id, "order") IN (
                SELECT conversation_id, "order" FROM messages
                GROUP BY conversation_id, "order", step_order HAVING COUNT(*) > 1)
        ) AS renumbered
        WHERE messages.id = renumbered.id
        """
    )
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_conversation_order")
        batch.create_index("ix_messages_conversation_order",
                           ["conversation_id", "order", "step_order"], unique=True)
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("maybe_sent", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.create_index("ix_outbox_pending", ["status", "conversation_id", "id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_pending")
        batch.drop_column("maybe_sent")
        batch.drop_column("next_attempt_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_conversation_order")
        batch.create_index("ix_messages_conversation_order",
                           ["conversation_id", "order", "step_order"], unique=False)
