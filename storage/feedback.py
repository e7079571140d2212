"""👍/👎 clicks on bot answers (`AnswerFeedback`)."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AnswerFeedback, utcnow


async def record_click(session: AsyncSession, *, message_id: int, conversation_id: int,
                       user_id: str, positive: bool) -> bool:
    """Store a person's click on an answer; False when they had clicked it before (the first
    click counts: a second click, a double delivery or another replica inserts nothing)."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(AnswerFeedback).values(message_id=message_id, conversation_id=conversation_id,
                                      user_id=user_id, positive=positive, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["message_id", "user_id"]))
    return result.rowcount == 1
