"""knowledge learnt from staff

Revision ID: c7e9f1a3b5d2
Revises: f7a5b9c1d2e3
Create Date: 2026-11-30 23:30:00

`knowledge_entries`: questions and answers proposed from resolved cases, saved by staff;
`knowledge_uses`: which entry the model cited in which answer; `embedding_cache`: embeddings of
fixed texts (the embeddings router's examples). Lexical search without an embedding model:
an FTS5 table kept in step by triggers on SQLite, a GIN full-text index on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c7e9f1a3b5d2"
down_revision = "a9c1d3e5f7b0"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(question, answer, "
    "content='knowledge_entries', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER knowledge_fts_insert AFTER INSERT ON knowledge_entries BEGIN "
    "INSERT INTO knowledge_fts(rowid, question, answer) VALUES (new.id, new.question, "
    "new.answer); END",
    "CREATE TRIGGER knowledge_fts_delete AFTER DELETE ON knowledge_entries BEGIN "
    "INSERT INTO knowledge_fts(knowledge_fts, rowid, question, answer) VALUES ('delete', "
    "old.id, old.question, old.answer); END",
    "CREATE TRIGGER knowledge_fts_update AFTER UPDATE OF question, answer ON knowledge_entries "
    "BEGIN INSERT INTO knowledge_fts(knowledge_fts, rowid, question, answer) VALUES ('delete', "
    "old.id, old.question, old.answer); INSERT INTO knowledge_fts(rowid, question, answer) "
    "VALUES (new.id, new.question, new.answer); END",
]


def upgrade() -> None:
    op.create_table(
        "knowledge_entries",
        sa.Column("id", ID, nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("conversation_id", ID, nullable=True),
        sa.Column("source_key", sa.String(length=100), nullable=False),
        sa.Column("saved_by", sa.String(length=32), nullable=True),
        sa.Column("saved_by_name", sa.String(length=200), nullable=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("embedding", sa.JSON(), nullable=True),
        sa.Column("embedding_model", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="SET NULL",
                                name=op.f("fk_knowledge_entries_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_entries")),
        sa.UniqueConstraint("source_key", name="uq_knowledge_entries_source_key"),
    )
    op.create_index(op.f("ix_knowledge_entries_conversation_id"), "knowledge_entries",
                    ["conversation_id"])
    op.create_table(
        "knowledge_uses",
        sa.Column("id", ID, nullable=False),
        sa.Column("entry_id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["knowledge_entries.id"], ondelete="CASCADE",
                                name=op.f("fk_knowledge_uses_entry_id_knowledge_entries")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_knowledge_uses_conversation_id_conversations")),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE",
                                name=op.f("fk_knowledge_uses_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_uses")),
        sa.UniqueConstraint("entry_id", "message_id", name="uq_knowledge_uses_entry_id"),
    )
    op.create_index(op.f("ix_knowledge_uses_entry_id"), "knowledge_uses", ["entry_id"])
    op.create_index(op.f("ix_knowledge_uses_conversation_id"), "knowledge_uses",
                    ["conversation_id"])
    op.create_table(
        "embedding_cache",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model", "text_hash", name=op.f("pk_embedding_cache")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute("CREATE INDEX knowledge_fts_question ON knowledge_entries USING gin "
                   "(to_tsvector('english', question || ' ' || answer))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("knowledge_fts_insert", "knowledge_fts_delete", "knowledge_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS knowledge_fts")
    else:
        op.execute("DROP INDEX IF EXISTS knowledge_fts_question")
    op.drop_table("embedding_cache")
    op.drop_index(op.f("ix_knowledge_uses_conversation_id"), table_name="knowledge_uses")
    op.drop_index(op.f("ix_knowledge_uses_entry_id"), table_name="knowledge_uses")
    op.drop_table("knowledge_uses")
    op.drop_index(op.f("ix_knowledge_entries_conversation_id"), table_name="knowledge_entries")
    op.drop_table("knowledge_entries")
