"""customer satisfaction ratings

Revision ID: f7a5b9c1d2e3
Revises: e6f4a8b0c1d2
Create Date: 2026-11-30 21:30:00

A resolved case may ask its customer for a one-click rating (`ratings`); `rating_cooldowns`
holds when each customer was last asked, so that no customer is asked twice per cooldown.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f7a5b9c1d2e3"
down_revision = "e6f4a8b0c1d2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("customer_user_id", sa.String(length=32), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_ratings_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    op.create_index(op.f("ix_ratings_conversation_id"), "ratings", ["conversation_id"])
    op.create_table(
        "rating_cooldowns",
        sa.Column("customer_user_id", sa.String(length=32), nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_user_id", name=op.f("pk_rating_cooldowns")),
    )


def downgrade() -> None:
    op.drop_table("rating_cooldowns")
    op.drop_index(op.f("ix_ratings_conversation_id"), table_name="ratings")
    op.drop_table("ratings")
