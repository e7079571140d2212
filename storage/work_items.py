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


async def next_open_work(session: AsyncSession, conversation_id: int) -> WorkItem | None:
    now = utcnow()
    return (await session.execute(
        select(WorkItem)
        .where(WorkItem.conversation_id == conversation_id, WorkItem.status == "open",
               or_(WorkItem.not_before.is_(None), WorkItem.not_before <= now))
        .order_by(WorkItem.id)
        .limit(1)
    )).scalars().first()


async def set_outcome(session: AsyncSession, item_id: int, values: dict[str, object]) -> None:
    """Record a work item's outcome in one UPDATE, no read first."""
    await session.execute(update(WorkItem).where(WorkItem.id == item_id).values(values)
                          .execution_options(synchronize_session=False))


async def prune_finished_work(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(WorkItem).where(WorkItem.status != "open", WorkItem.created_at < older_than))
    return result.rowcount or 0
