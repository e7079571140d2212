"""feedback buttons on bot answers

Revision ID: b8d0e2f4a6c1
Revises: f7a5b9c1d2e3
Create Date: 2026-11-30 23:30:00

Every bot answer carries 👍/👎 feedback buttons; `answer_feedback` holds the clicks, one per
person and answer (the first counts).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b8d0e2f4a6c1"
down_revision = "f7a5b9c1d2e3"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "answer_feedback",
        sa.Column("id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("positive", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE",
                                name=op.f("fk_answer_feedback_message_id_messages")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_answer_feedback_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_feedback")),
        sa.UniqueConstraint("message_id", "user_id", name="uq_answer_feedback_message_user"),
    )
    op.create_index(op.f("ix_answer_feedback_conversation_id"), "answer_feedback",
                    ["conversation_id"])
    op.create_index(op.f("ix_answer_feedback_created_at"), "answer_feedback", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_answer_feedback_created_at"), table_name="answer_feedback")
    op.drop_index(op.f("ix_answer_feedback_conversation_id"), table_name="answer_feedback")
    op.drop_table("answer_feedback")
