"""👍/👎 clicks on bot answers (`AnswerFeedback`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AnswerFeedback, utcnow
from storage.upserts import insert_new


async def record_click(session: AsyncSession, *, message_id: int, conversation_id: int,
                       user_id: str, positive: bool) -> bool:
    """Store a person's click on an answer; False when they had clicked it before (the first
    click counts: a second click, a double delivery or another replica inserts nothing)."""
    result = await insert_new(session, AnswerFeedback.__table__, [dict(
        message_id=message_id, conversation_id=conversation_id, user_id=user_id,
        positive=positive, created_at=utcnow())], conflict=("message_id", "user_id"))
    return result.rowcount == 1
