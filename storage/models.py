"""SQLAlchemy 2.0 typed models: the whole persistent state of the bot.

The schema only changes through alembic migrations (migrations/versions); these classes are what
autogenerate compares against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use storage.clock.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def utcnow() -> datetime:
    return datetime.now(UTC)


# BigInteger ids that still autoincrement on SQLite (which only does so for INTEGER).
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Conversation(Base):
    """One customer Slack thread; shown to staff as a case `#case_number`."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_conversation_thread"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Short number staff type in commands (`/handoff take 42`); equals id, kept apart for display.
    # Given the first time staff see the conversation (`conversations.number_case`): None for
    # a conversation the bot handled alone, which staff never saw.
    case_number: Mapped[int | None] = mapped_column(Integer, unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    # The root ts of the customer's thread: every bot answer goes there.
    thread_ts: Mapped[str] = mapped_column(String(32))
    customer_user_id: Mapped[str | None] = mapped_column(String(32))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    # `bot`, `humans` (unclaimed) or a staff member's Slack user id.
    assignee: Mapped[str] = mapped_column(String(32), default="bot")
    # open | resolved
    status: Mapped[str] = mapped_column(String(16), default="open")
    # The case's thread in the support channel, once one was posted.
    support_thread_ts: Mapped[str | None] = mapped_column(String(32))
    # Customer waiting on staff since (for holding notices); null when nobody waits on humans.
    waiting_on_humans_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    customer_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_human_activity_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the case was last resolved; cleared when it opens again.
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Lease: the worker that currently runs this conversation's work items.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Message(Base):
    """One entry of a conversation's history, ordered by (order, step_order)."""

    __tablename__ = "messages"
    __table_args__ = (
        # Unique: two messages never share a position, whatever arrives at once.
        Index("ix_messages_conversation_order", "conversation_id", "order", "step_order",
              unique=True),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # `order` counts customer turns; `step_order` the assistant/tool steps inside one turn.
    order: Mapped[int] = mapped_column(Integer)
    step_order: Mapped[int] = mapped_column(Integer)
    # user | assistant | tool
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    # assistant: [{"id", "name", "arguments"}]; tool: {"tool_call_id", "tool_name"} in tool_result.
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSON)
    tool_call_id: Mapped[str | None] = mapped_column(String(128))
    tool_name: Mapped[str | None] = mapped_column(String(64))
    agent_name: Mapped[str | None] = mapped_column(String(200))
    # {"provider": "human", "providerMetadata": {"human": {...}}} for human-written entries.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    # pending | success | failed
    status: Mapped[str] = mapped_column(String(16), default="success")
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    # USD of the model call that produced this row (litellm's cost table; 0 for unknown models).
    cost_usd: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class HumanRequest(Base):
    """One askHuman tool call waiting for (or answered by) a person."""

    __tablename__ = "human_requests"
    __table_args__ = (UniqueConstraint("tool_call_id", name="uq_human_requests_tool_call_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # The assistant message holding the tool call.
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    tool_call_id: Mapped[str] = mapped_column(String(128))
    # Number within its case, so staff can answer `#2 ...`.
    number: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    # The answer the model would send if its guess is right, and what staff did with it:
    # used | edited | ignored (None while pending, or when there was no suggestion).
    suggested_answer: Mapped[str | None] = mapped_column(Text)
    suggestion_outcome: Mapped[str | None] = mapped_column(String(16))
    # pending | answered | expired | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    support_ts: Mapped[str | None] = mapped_column(String(32))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(32))
    answered_by_name: Mapped[str | None] = mapped_column(String(200))
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Due times of the follow-ups; the scheduler claims rows whose time has come.
    remind_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    give_up_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ReceivedEvent(Base):
    """De-duplication keys of accepted Slack deliveries (event ids and message keys)."""

    __tablename__ = "received_events"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class InboundEvent(Base):
    """A Slack Events API delivery, stored as received before Slack is acknowledged; a worker
    hands it to the listeners and deletes it (bot/pipeline/deliveries.py)."""

    __tablename__ = "inbound_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker holds it until then; past it (the worker died), another takes it.
    claimed_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set when the listeners failed on it too often: kept for an operator, never retried.
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class WorkItem(Base):
    """Durable work for one conversation: run the model, relay a reply, post a follow-up."""

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_open", "status", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # open | done | failed
    status: Mapped[str] = mapped_column(String(16), default="open")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OutboxPost(Base):
    """A Slack post recorded before it is sent; `key` makes a resend idempotent."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("key", name="uq_outbox_key"),
        # The sender's and the sweep's view: pending posts per conversation, in order.
        Index("ix_outbox_pending", "status", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    # chat.postMessage | chat.update | chat.delete | chat.postEphemeral
    method: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    # What to update with the resulting ts: {"message_id": n} or {"human_request_id": n} ...
    on_sent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # pending | sent | failed | skipped (a marker never sent: the answer came before the ⏳)
    # | streaming (a `chat.startStream` whose stream is not ended yet, see pipeline/streaming)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Not tried before this time: a sender's claim while it calls Slack, or the back-off
    # (Retry-After) after a failure. Null: due now.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # An earlier attempt may have reached Slack (a crash mid-call, a 5xx, a lost answer): the
    # next attempt looks for the post in Slack before sending again.
    maybe_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CaseCounter(Base):
    """One row: the last case number given (see `storage.conversations.number_case`)."""

    __tablename__ = "case_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class AssignmentChange(Base):
    """Audit trail of who responds next: every change of a conversation's assignee."""

    __tablename__ = "assignment_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    from_assignee: Mapped[str] = mapped_column(String(32))
    to_assignee: Mapped[str] = mapped_column(String(32))
    changed_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Rating(Base):
    """A satisfaction prompt sent to a customer when their case was resolved, and their answer
    (`score` 1 bad, 2 OK, 3 good; None until they click)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 index=True)
    customer_user_id: Mapped[str] = mapped_column(String(32))
    asked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class RatingCooldown(Base):
    """When each customer was last asked for a rating: one row per customer, moved forward by
    a conditional update, so that replicas never ask twice within the cooldown."""

    __tablename__ = "rating_cooldowns"

    customer_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_asked_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AnswerFeedback(Base):
    """A 👍/👎 click on a bot answer (an assistant message): who, which answer, when. One row
    per person and answer: the first click counts (the unique key decides, across replicas)."""

    __tablename__ = "answer_feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id", name="uq_answer_feedback_message_user"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    positive: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
class HomeViewer(Base):
    """A person who opened the app's Home tab: their view is republished when cases change
    (`due_at` set), at most once per `home.refresh_every` (`published_at`). Shared by replicas."""

    __tablename__ = "home_viewers"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    staff: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Set when the view must be published again (a case changed, a retry is due).
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A one-time line shown at the top of the next view (a refused click from Home).
    notice: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))


class HomeChange(Base):
    """A case changed: written in the change's transaction (insert only, no lock shared with
    other cases), turned into due Home views and deleted by the Home refresher."""

    __tablename__ = "home_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class KnowledgeEntry(Base):
    """A question and its answer learnt from staff: proposed when a case is resolved, used by
    the model only once a staff member saved it (and until it is retired or expires)."""

    __tablename__ = "knowledge_entries"
    __table_args__ = (UniqueConstraint("source_key", name="uq_knowledge_entries_source_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    # proposed | saved | discarded | retired
    status: Mapped[str] = mapped_column(String(16), default="proposed")
    # The case it was learnt from (None once that case is deleted, or for entries typed in).
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True)
    # One proposal per resolution of a case: replicas and retries insert nothing more.
    source_key: Mapped[str] = mapped_column(String(100))
    saved_by: Mapped[str | None] = mapped_column(String(32))
    saved_by_name: Mapped[str | None] = mapped_column(String(200))
    saved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Who discarded or retired it, last.
    closed_by: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The question's embedding (a JSON list of floats) and the model that made it; None in
    # lexical mode or until the worker computed it.
    embedding: Mapped[list[Any] | None] = mapped_column(JSON)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class KnowledgeUse(Base):
    """An entry the model cited in an answer: which case, which answer."""

    __tablename__ = "knowledge_uses"
    __table_args__ = (UniqueConstraint("entry_id", "message_id",
                                       name="uq_knowledge_uses_entry_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("knowledge_entries.id", ondelete="CASCADE"),
                                          index=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class EmbeddingCache(Base):
    """Embeddings of fixed texts (the embeddings router's examples), per model, so that each is
    computed once for every process and replica."""

    __tablename__ = "embedding_cache"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
