"""Customer satisfaction: a resolved case may ask its customer for a one-click rating.

`offer` runs in the resolving transaction: when `ratings.enabled`, a random draw under
`ratings.sample` and the customer's cooldown (`storage.ratings.start_cooldown`, decided by one
statement in the database, so replicas agree) allow it, a prompt with three buttons is queued in
the customer's thread. `rate` stores the click of the customer who was asked (anyone else is
refused), replaces the buttons with a thank-you and shows the rating in the case's support
thread. The first click counts; a later one changes nothing.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import AppConfig
from bot.errors import RatingRefused
from bot.toolkit import texts
from bot.toolkit.blocks import rating_blocks, rating_thanks_blocks
from bot.toolkit.posts import PostQueue, wake
from storage import conversations, ratings
from storage.models import Conversation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rated:
    conversation_id: int
    score: int


def prompt_key(rating_id: int) -> str:
    return f"rating:{rating_id}"


class Ratings:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 posts: PostQueue, *, draw: Callable[[], float] = random.random) -> None:
        self._settings = config.ratings
        self._sessions = sessions
        self._posts = posts
        self._draw = draw

    async def offer(self, session: AsyncSession, conversation: Conversation) -> bool:
        """Queue the rating prompt for a case being resolved, in the caller's transaction;
        True when it was queued."""
        settings = self._settings
        customer = conversation.customer_user_id
        if not settings.enabled or not customer or settings.sample <= 0:
            return False
        if settings.sample < 1 and self._draw() >= settings.sample:
            return False
        if not await ratings.start_cooldown(session, customer, cooldown=settings.cooldown):
            log.info("case %s: no rating prompt, customer asked within the cooldown",
                     conversation.case_number)
            return False
        rating = await ratings.add_rating(session, conversation_id=conversation.id,
                                          customer_user_id=customer)
        await self._posts.to_customer(session, conversation, texts.rating_prompt(),
                                      key=prompt_key(rating.id), blocks=rating_blocks(rating.id))
        await wake(session, conversation.id)
        return True

    async def rate(self, *, rating_id: int, score: int, user_id: str) -> Rated:
        """The customer's click: stored once, thanked, shown to staff."""
        if score not in (1, 2, 3):
            raise RatingRefused(texts.rating_not_yours())
        async with self._sessions() as session:
            rating = await ratings.get_rating(session, rating_id)
            if rating is None or rating.customer_user_id != user_id:
                raise RatingRefused(texts.rating_not_yours())
            if not await ratings.record_score(session, rating_id, score):
                raise RatingRefused(texts.rating_already_given())
            conversation = await conversations.get_conversation(session,
                                                                rating.conversation_id)
            await self._posts.update_customer_post(
                session, conversation, key=f"rated:{rating_id}", of_key=prompt_key(rating_id),
                text=texts.rating_thanks(score), blocks=rating_thanks_blocks(score))
            case_number = await conversations.number_case(session, conversation)
            await self._posts.note_in_case_thread(
                session, conversation, texts.rating_note(case_number, score),
                key=f"rating-note:{rating_id}")
            await session.commit()
            return Rated(conversation.id, score)
