"""Durable work items: what a conversation's worker must do next, in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WorkItem, utcnow


async def add_work(
    session: AsyncSession, *, conversation_id: int, kind: str,
    payload: dict[str, Any] | None = None, not_before: datetime | None = None,
) -> WorkItem:
    item = WorkItem(conversation_id=conversation_id, kind=kind, payload=payload or {},
                    status="open", attempts=0, not_before=not_before)
    session.add(item)
    await session.flush()
    return item


async def take_next(session: AsyncSession, conversation_id: int) -> WorkItem | None:
    """The conversation's first due open item with this attempt counted, in one statement;
    None when nothing is due. The caller holds the conversation's lease."""
    now = utcnow()
    first_due = (
        select(WorkItem.id)
        .where(WorkItem.conversation_id == conversation_id, WorkItem.status == "open",
               or_(WorkItem.not_before.is_(None), WorkItem.not_before <= now))
        .order_by(WorkItem.id)
        .limit(1)
        .scalar_subquery())
    return (await session.scalars(
        update(WorkItem).where(WorkItem.id == first_due)
        .values(attempts=WorkItem.attempts + 1).returning(WorkItem)
        .execution_options(synchronize_session=False))).first()


async def set_outcome(session: AsyncSession, item_id: int, values: dict[str, object]) -> None:
    """Record a work item's outcome in one UPDATE, no read first."""
    await session.execute(update(WorkItem).where(WorkItem.id == item_id).values(values)
                          .execution_options(synchronize_session=False))


async def prune_finished_work(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(WorkItem).where(WorkItem.status != "open", WorkItem.created_at < older_than))
    return result.rowcount or 0
