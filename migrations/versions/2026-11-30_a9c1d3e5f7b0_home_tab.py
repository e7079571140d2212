"""the Home tab's viewers and the case changes that refresh their views

Revision ID: a9c1d3e5f7b0
Revises: f7a5b9c1d2e3
Create Date: 2026-11-30 23:30:00

`home_viewers`: who opened the app's Home tab, whether their view must be published again and
when it last was; `home_changes`: one row per case change, written in the change's transaction
and consumed by the Home refresher (insert-only, so cases never wait on each other for it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a9c1d3e5f7b0"
down_revision = "b8d0e2f4a6c1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "home_viewers",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("staff", sa.Boolean(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notice", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_home_viewers")),
    )
    op.create_index(op.f("ix_home_viewers_due_at"), "home_viewers", ["due_at"])
    op.create_table(
        "home_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_home_changes")),
    )


def downgrade() -> None:
    op.drop_table("home_changes")
    op.drop_index(op.f("ix_home_viewers_due_at"), table_name="home_viewers")
    op.drop_table("home_viewers")
