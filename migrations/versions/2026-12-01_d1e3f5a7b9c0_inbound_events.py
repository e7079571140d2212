"""Slack deliveries stored before their ack

Revision ID: d1e3f5a7b9c0
Revises: c7e9f1a3b5d2
Create Date: 2026-12-01 03:15:00

`inbound_events`: each Events API delivery, as received, from its ack until a worker has
handed it to the listeners (bot/pipeline/deliveries.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d1e3f5a7b9c0"
down_revision = "c7e9f1a3b5d2"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_inbound_events_event_id")),
    )


def downgrade() -> None:
    op.drop_table("inbound_events")
