"""De-duplication of Slack deliveries: a key is accepted once, ever (until pruned)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ReceivedEvent, utcnow
from storage.upserts import insert_new

_TABLE = ReceivedEvent.__table__


async def accept_once(session: AsyncSession, key: str) -> bool:
    """Insert the key; False when it was already there (a retry or a duplicate delivery)."""
    result = await insert_new(session, _TABLE, [{"key": key, "received_at": utcnow()}],
                              conflict=("key",))
    return result.rowcount == 1


async def accept_all_once(session: AsyncSession, keys: list[str]) -> bool:
    """Insert every key in one statement; False when any was already there. The caller rolls
    back on False, so a partly new delivery (an `app_mention` twin) records nothing."""
    now = utcnow()
    result = await insert_new(session, _TABLE, [{"key": key, "received_at": now} for key in keys],
                              conflict=("key",))
    return result.rowcount == len(keys)


async def prune_received(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(
        delete(ReceivedEvent).where(ReceivedEvent.received_at < older_than))
    return result.rowcount or 0
