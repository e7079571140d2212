"""Slack deliveries stored before their ack (`InboundEvent`), and the workers' claims on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import InboundEvent, utcnow
from storage.upserts import insert_many_new

_TABLE = InboundEvent.__table__


@dataclass
class StoredDelivery:
    """A claimed delivery on its way to the listeners."""

    id: int
    body: str
    attempts: int  # this one included
    # Deleted already, in the transaction that recorded what it says (see `forget`).
    forgotten: bool = False


async def record_all(connection: AsyncConnection, deliveries: list[tuple[str, str]]) -> None:
    """Store deliveries (event id, body) at once; one already stored is skipped."""
    now = utcnow()
    await insert_many_new(connection, _TABLE, [
        {"event_id": event_id, "body": body, "received_at": now, "attempts": 0}
        for event_id, body in deliveries], conflict=("event_id",))


def _claimable(now: datetime) -> Any:
    return and_(_TABLE.c.failed_at.is_(None),
                or_(_TABLE.c.claimed_until.is_(None), _TABLE.c.claimed_until < now))


async def any_claimable(session: AsyncSession) -> bool:
    """Whether any delivery waits for a worker (a read: the sweep's look before a claim)."""
    return (await session.execute(
        select(InboundEvent.id).where(_claimable(utcnow())).limit(1))).first() is not None


# Built once (see storage/conversations.py): pick the oldest free deliveries and hold them, in
# one statement.
_CLAIM = (  # on the table: it returns no objects (see storage/conversations.py)
    update(_TABLE)
    .where(_TABLE.c.id.in_(
        select(_TABLE.c.id).where(_claimable(bindparam("now")))
        .order_by(_TABLE.c.id).limit(bindparam("limit"))
        .with_for_update(skip_locked=True).scalar_subquery()))
    .values(claimed_until=bindparam("until"), attempts=_TABLE.c.attempts + 1)
    .returning(_TABLE.c.id, _TABLE.c.body, _TABLE.c.attempts))


async def claim(session: AsyncSession, *, limit: int, hold_for: timedelta,
                now: datetime | None = None) -> list[StoredDelivery]:
    """Up to `limit` deliveries nobody holds, oldest first, held by the caller for `hold_for`
    (another process skips them meanwhile; PostgreSQL skips rows another claim has locked)."""
    now = now or utcnow()
    rows = (await session.execute(_CLAIM, {"now": now, "limit": limit,
                                           "until": now + hold_for})).all()
    return sorted((StoredDelivery(id=r.id, body=r.body, attempts=r.attempts) for r in rows),
                  key=lambda c: c.id)


async def forget(session: AsyncSession, ids: list[int]) -> None:
    """Delete deliveries the listeners have handled."""
    if ids:
        await session.execute(delete(InboundEvent).where(InboundEvent.id.in_(ids))
                              .execution_options(synchronize_session=False))


# Built once: every message's.
_FORGET_ONE = delete(_TABLE).where(_TABLE.c.id == bindparam("delivery_id"))


async def forget_with(session: AsyncSession, delivery: StoredDelivery | None) -> None:
    """Delete the delivery in the transaction that records what it says (the caller marks it
    `forgotten` once that transaction commits): recorded and forgotten at once, or neither."""
    if delivery is not None:
        await session.execute(_FORGET_ONE, {"delivery_id": delivery.id})


async def give_up(session: AsyncSession, failures: dict[int, str],
                  now: datetime | None = None) -> None:
    """Mark deliveries the listeners keep failing on: kept, never taken again."""
    for row_id, error in failures.items():
        await session.execute(update(InboundEvent).where(InboundEvent.id == row_id)
                              .values(failed_at=now or utcnow(), error=error[:2000])
                              .execution_options(synchronize_session=False))


async def count_failed(session: AsyncSession) -> int:
    return int((await session.execute(
        select(func.count()).select_from(InboundEvent)
        .where(InboundEvent.failed_at.is_not(None)))).scalar_one())
