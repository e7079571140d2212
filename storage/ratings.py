"""Satisfaction ratings: who was asked when, their answer, and the per-customer cooldown."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Rating, RatingCooldown, utcnow
from storage.upserts import insert_new


async def start_cooldown(session: AsyncSession, customer_user_id: str, *,
                         cooldown: timedelta, now: datetime | None = None) -> bool:
    """Record that the customer is asked now; False (nothing changed) when they were asked
    within `cooldown`. One statement decides, so two replicas resolving two cases of the same
    customer at once ask once: the row's insert or its conditional update wins for one only."""
    now = now or utcnow()
    inserted = await insert_new(
        session, RatingCooldown.__table__,
        [{"customer_user_id": customer_user_id, "last_asked_at": now}],
        conflict=("customer_user_id",))
    if inserted.rowcount == 1:
        return True
    moved = await session.execute(
        update(RatingCooldown)
        .where(RatingCooldown.customer_user_id == customer_user_id,
               RatingCooldown.last_asked_at <= now - cooldown)
        .values(last_asked_at=now))
    return moved.rowcount == 1


async def add_rating(session: AsyncSession, *, conversation_id: int,
                     customer_user_id: str) -> Rating:
    rating = Rating(conversation_id=conversation_id, customer_user_id=customer_user_id,
                    asked_at=utcnow())
    session.add(rating)
    await session.flush()
    return rating


async def get_rating(session: AsyncSession, rating_id: int) -> Rating | None:
    return await session.get(Rating, rating_id)


async def record_score(session: AsyncSession, rating_id: int, score: int) -> bool:
    """Store the customer's answer; False when it was already answered (the first click
    counts: a second click, a double delivery or another replica changes nothing)."""
    result = await session.execute(
        update(Rating).where(Rating.id == rating_id, Rating.score.is_(None))
        .values(score=score, rated_at=utcnow()))
    return result.rowcount == 1

