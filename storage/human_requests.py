"""Queries on askHuman requests: create, find pending, answer exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import HumanRequest, utcnow


def pending_in(conversation_id: Any) -> ColumnElement[bool]:
    """A question of the conversation still waiting for staff (`conversation_id`: a value, a
    bind parameter or a column)."""
    return and_(HumanRequest.conversation_id == conversation_id,
                HumanRequest.status == "pending")


# Built once (see storage/conversations.py).
_PENDING = (
    select(HumanRequest)
    .where(pending_in(bindparam("conversation")))
    .order_by(HumanRequest.id))


async def create_request(
    session: AsyncSession, *, conversation_id: int, message_id: int, tool_call_id: str,
    question: str, remind_at: datetime | None = None, escalate_at: datetime | None = None,
    give_up_at: datetime | None = None, suggested_answer: str | None = None,
) -> HumanRequest:
    number = (await session.execute(
        select(func.count()).where(HumanRequest.conversation_id == conversation_id)
    )).scalar_one() + 1
    request = HumanRequest(
        conversation_id=conversation_id, message_id=message_id, tool_call_id=tool_call_id,
        number=number, question=question, suggested_answer=suggested_answer,
        status="pending", remind_at=remind_at,
        escalate_at=escalate_at, give_up_at=give_up_at, reminders_sent=0,
    )
    session.add(request)
    await session.flush()
    return request


async def pending_requests(session: AsyncSession, conversation_id: int) -> list[HumanRequest]:
    return list(await session.scalars(_PENDING, {"conversation": conversation_id}))


async def latest_unanswered_expired(session: AsyncSession,
                                    conversation_id: int) -> HumanRequest | None:
    """The newest request that timed out and got no staff answer afterwards."""
    return (await session.execute(
        select(HumanRequest)
        .where(HumanRequest.conversation_id == conversation_id,
               HumanRequest.status == "expired", HumanRequest.answer.is_(None))
        .order_by(HumanRequest.id.desc()).limit(1)
    )).scalars().first()


async def get_request(session: AsyncSession, request_id: int) -> HumanRequest | None:
    return await session.get(HumanRequest, request_id)


async def find_request_by_number(
    session: AsyncSession, *, conversation_id: int, number: int
) -> HumanRequest | None:
    return (await session.execute(
        select(HumanRequest).where(HumanRequest.conversation_id == conversation_id,
                                   HumanRequest.number == number)
    )).scalars().first()


async def close_request(
    session: AsyncSession, *, request_id: int, status: str, answer: str | None,
    by_user: str | None = None, by_name: str | None = None,
) -> bool:
    """Move a pending request to `status`; False when someone else closed it first.

    A conditional update, so two staff answering at once (or an answer racing a give-up)
    resolve to exactly one winner on SQLite and PostgreSQL alike."""
    result = await session.execute(
        update(HumanRequest)
        .where(HumanRequest.id == request_id, HumanRequest.status == "pending")
        .values(status=status, answer=answer, answered_by=by_user, answered_by_name=by_name,
                answered_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def first_request(session: AsyncSession, conversation_id: int) -> HumanRequest | None:
    """The conversation's first askHuman question."""
    return (await session.execute(
        select(HumanRequest).where(HumanRequest.conversation_id == conversation_id)
        .order_by(HumanRequest.id).limit(1)
        .execution_options(populate_existing=True))).scalars().first()
