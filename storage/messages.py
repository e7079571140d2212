"""Queries on a conversation's message history, ordered by (order, step_order)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import conversations
from storage.models import Conversation, Message

# Built once (see storage/conversations.py).
_HISTORY = (
    select(Message)
    .where(Message.conversation_id == bindparam("conversation"), Message.status == "success")
    .order_by(Message.order, Message.step_order))
_ALL_ROWS = (
    select(Message)
    .where(Message.conversation_id == bindparam("conversation"))
    .order_by(Message.order, Message.step_order))
_TURN = (
    select(Message)
    .where(Message.conversation_id == bindparam("conversation"),
           Message.order == bindparam("turn"))
    .order_by(Message.step_order))
_WITH_CONVERSATION = (
    select(Message, Conversation)
    .join(Conversation, Conversation.id == Message.conversation_id)
    .where(Message.id == bindparam("message_id")))
# On the table: they return no objects (see storage/conversations.py).
_TABLE = Message.__table__
_FAIL_PENDING = (
    update(_TABLE)
    .where(_TABLE.c.conversation_id == bindparam("conversation"),
           _TABLE.c.status == "pending")
    .values(status="failed"))
_FIRST_TS = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("message_id"), _TABLE.c.slack_ts.is_(None))
    .values(slack_ts=bindparam("ts")).returning(_TABLE.c.metadata))


async def _last_position(session: AsyncSession, conversation_id: int) -> tuple[int, int]:
    row = (await session.execute(
        select(Message.order, Message.step_order)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.order.desc(), Message.step_order.desc())
        .limit(1)
    )).first()
    return (row[0], row[1]) if row else (-1, -1)


async def add_message(
    session: AsyncSession, *, conversation_id: int, role: str, position: str = "step",
    text: str | None = None, **fields: Any,
) -> Message:
    """Append a message. `position="turn"` opens a new order (a customer or staff turn);
    `"step"` continues the current turn (a step inside a given turn: `add_step`)."""
    # Positions are the current maximum + 1: without the lock two messages arriving at once get
    # the same one; the unique index on positions is the net behind it.
    await conversations.lock_conversation(session, conversation_id)
    order, step = await _last_position(session, conversation_id)
    if position == "turn" or order < 0:
        order, step = order + 1, 0
    else:
        step += 1
    message = Message(conversation_id=conversation_id, order=order, step_order=step,
                      role=role, text=text, **fields)
    session.add(message)
    await session.flush()
    return message


async def add_step(
    session: AsyncSession, *, conversation_id: int, role: str, in_order: int | None = None,
    locked: bool = False, rows: list[Message] | None = None, **fields: Any,
) -> tuple[Message, list[Message]]:
    """Append a step to turn `in_order` (else the latest turn), with the rows that turn had
    before it, whatever their status, in step order: the step's position and the turn's bounds
    come from one read, taken under the conversation's lock (`locked`: the transaction holds
    it already; `rows`: and has read `conversation_rows` under it, which are used instead)."""
    if not locked and rows is None:
        await conversations.lock_conversation(session, conversation_id)
    if rows is not None:
        if in_order is None:
            in_order = max((row.order for row in rows), default=0)
        before = [row for row in rows if row.order == in_order]
    else:
        if in_order is None:
            in_order = max(0, (await _last_position(session, conversation_id))[0])
        before = await turn_rows(session, conversation_id, in_order)
    message = Message(conversation_id=conversation_id, order=in_order,
                      step_order=max((row.step_order for row in before), default=0) + 1,
                      role=role, **fields)
    session.add(message)
    await session.flush()
    return message, before


async def fail_pending(session: AsyncSession, conversation_id: int) -> None:
    """Mark the conversation's pending model steps failed (an attempt that never finished)."""
    await session.execute(_FAIL_PENDING, {"conversation": conversation_id})


async def turn_rows(session: AsyncSession, conversation_id: int, turn: int) -> list[Message]:
    """Every row of one turn, whatever its status, in step order."""
    return list(await session.scalars(_TURN, {"conversation": conversation_id,
                                              "turn": turn}))


async def add_tool_result(
    session: AsyncSession, *, call_message: Message, tool_call_id: str, tool_name: str,
    text: str, **fields: Any,
) -> Message:
    """Store a tool result inside the turn of its call, so it directly follows the call in the
    model's context even when the customer wrote in between."""
    message, _ = await add_step(
        session, conversation_id=call_message.conversation_id, role="tool",
        in_order=call_message.order, text=text, tool_call_id=tool_call_id,
        tool_name=tool_name, **fields)
    return message


async def list_history(session: AsyncSession, conversation_id: int) -> list[Message]:
    """Every successful message of a conversation, in order."""
    return list(await session.scalars(_HISTORY, {"conversation": conversation_id}))


async def conversation_rows(session: AsyncSession, conversation_id: int) -> list[Message]:
    """Every row of a conversation, whatever its status, in order (`successful` of them is its
    history)."""
    return list(await session.scalars(_ALL_ROWS, {"conversation": conversation_id}))


def successful(rows: list[Message]) -> list[Message]:
    """The history among a conversation's rows: its successful messages, in order."""
    return [row for row in rows if row.status == "success"]


async def get_message(session: AsyncSession, message_id: int) -> Message | None:
    return await session.get(Message, message_id)


async def get_with_conversation(session: AsyncSession, message_id: int
                                ) -> tuple[Message, Conversation]:
    """A message and its conversation, in one read."""
    row = (await session.execute(_WITH_CONVERSATION, {"message_id": message_id})).one()
    return row[0], row[1]


async def record_first_ts(session: AsyncSession, message_id: int, ts: str) -> dict[str, Any] | None:
    """Record the Slack ts of a message's first post, unless one is recorded (one statement);
    the message's metadata ({} when it has none) when this call recorded it, else None."""
    row = (await session.execute(_FIRST_TS, {"message_id": message_id, "ts": ts})).first()
    return None if row is None else (row[0] or {})


def human_metadata(name: str, user_id: str) -> dict[str, object]:
    """The metadata of a message a person wrote as the agent (`provider: human`)."""
    return {"provider": "human",
            "providerMetadata": {"human": {"name": name, "slack_user_id": user_id}}}
