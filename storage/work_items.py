"""Durable work items: what a conversation's worker must do next, in order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WorkItem, utcnow

WORK_ITEMS = WorkItem.__table__


async def add_work(
    session: AsyncSession, *, conversation_id: int, kind: str,
    payload: dict[str, Any] | None = None, not_before: datetime | None = None,
) -> WorkItem:
    item = WorkItem(conversation_id=conversation_id, kind=kind, payload=payload or {},
                    status="open", attempts=0, not_before=not_before)
    session.add(item)
    await session.flush()
    return item


def is_due(now: Any) -> ColumnElement[bool]:
    """An open item whose time has come: what a worker takes next (`now`: a value or a bind
    parameter). On the table's columns, so Core statements may use it as well as ORM ones."""
    return and_(WORK_ITEMS.c.status == "open",
                or_(WORK_ITEMS.c.not_before.is_(None), WORK_ITEMS.c.not_before <= now))


# Built once (see storage/conversations.py). The subquery is Core: an ORM one inside an ORM
# statement gets ORM compile options on its first execution, which changes the statement's
# cache key once, so it is compiled twice per process (tests/e2e/test_statement_cache.py).
_TAKE_NEXT = (
    update(WorkItem)
    .where(WorkItem.id == (
        select(WORK_ITEMS.c.id)
        .where(WORK_ITEMS.c.conversation_id == bindparam("conversation"),
               is_due(bindparam("now")))
        .order_by(WORK_ITEMS.c.id)
        .limit(1)
        .scalar_subquery()))
    .values(attempts=WorkItem.attempts + 1).returning(WorkItem)
    .execution_options(synchronize_session=False))
_OUTCOME = (  # on the table: it returns nothing (see storage/conversations.py)
    update(WORK_ITEMS).where(WORK_ITEMS.c.id == bindparam("item_id"))
    .values(status=bindparam("new_status"), error=bindparam("new_error"),
            attempts=bindparam("new_attempts")))
_OUTCOME_AND_WAIT = _OUTCOME.values(not_before=bindparam("wait_until"))


async def take_next(session: AsyncSession, conversation_id: int) -> WorkItem | None:
    """The conversation's first due open item with this attempt counted, in one statement;
    None when nothing is due. The caller holds the conversation's lease."""
    return (await session.scalars(
        _TAKE_NEXT, {"conversation": conversation_id, "now": utcnow()})).first()


async def set_outcome(session: AsyncSession, item_id: int, values: dict[str, object]) -> None:
    """Record a work item's outcome (status, error, attempts, and not_before when it waits)
    in one UPDATE, no read first."""
    params = {"item_id": item_id, "new_status": values["status"],
              "new_error": values["error"], "new_attempts": values["attempts"]}
    if "not_before" in values:
        await session.execute(_OUTCOME_AND_WAIT, {**params, "wait_until": values["not_before"]})
    else:
        await session.execute(_OUTCOME, params)


async def prune_finished_work(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(WorkItem).where(WorkItem.status != "open", WorkItem.created_at < older_than))
    return result.rowcount or 0
