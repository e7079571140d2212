"""A conversation's stored state as the bot keeps it in its database, for the page's
"Stored history" tab: the model's message history (roles, tool calls and results, human
metadata), the askHuman requests, and who was assigned when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import conversations, messages
from storage.models import AssignmentChange, Conversation, HumanRequest, Message


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _message(row: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"order": row.order, "step": row.step_order, "role": row.role,
                           "text": row.text}
    for key, value in (("tool_calls", row.tool_calls), ("tool_call_id", row.tool_call_id),
                       ("tool_name", row.tool_name), ("agent_name", row.agent_name),
                       ("metadata", row.meta), ("slack_ts", row.slack_ts), ("model", row.model)):
        if value:
            out[key] = value
    if row.prompt_tokens or row.completion_tokens:
        out["tokens"] = {"prompt": row.prompt_tokens, "completion": row.completion_tokens}
    return out


def _request(row: HumanRequest) -> dict[str, Any]:
    return {"number": row.number, "question": row.question, "status": row.status,
            "answer": row.answer, "answered_by": row.answered_by_name,
            "tool_call_id": row.tool_call_id, "asked_at": _when(row.created_at),
            "answered_at": _when(row.answered_at), "reminders_sent": row.reminders_sent}


def _assignment(row: AssignmentChange) -> dict[str, Any]:
    return {"from": row.from_assignee, "to": row.to_assignee, "by": row.changed_by,
            "reason": row.reason, "at": _when(row.created_at)}


async def _find(session: AsyncSession, channel: str, thread_ts: str) -> Conversation | None:
    found = await conversations.find_conversation_by_thread(
        session, channel_id=channel, thread_ts=thread_ts)
    if found is None:
        found = await conversations.find_conversation_by_support_thread(
            session, support_thread_ts=thread_ts)
    return found


async def conversation_history(sessions: async_sessionmaker[AsyncSession], *, channel: str,
                               thread_ts: str) -> dict[str, Any] | None:
    """The stored state of the conversation of a customer thread or of its support thread."""
    async with sessions() as session:
        found = await _find(session, channel, thread_ts)
        if found is None:
            return None
        history = await messages.list_history(session, found.id)
        requests = (await session.execute(
            select(HumanRequest).where(HumanRequest.conversation_id == found.id)
            .order_by(HumanRequest.id))).scalars()
        changes = (await session.execute(
            select(AssignmentChange).where(AssignmentChange.conversation_id == found.id)
            .order_by(AssignmentChange.id))).scalars()
        return {
            "case_number": found.case_number, "assignee": found.assignee,
            "status": found.status, "channel": found.channel_id, "thread_ts": found.thread_ts,
            "support_thread_ts": found.support_thread_ts,
            "customer": found.customer_name,
            "messages": [_message(row) for row in history],
            "human_requests": [_request(row) for row in requests],
            "assignments": [_assignment(row) for row in changes],
        }
