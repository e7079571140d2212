"""Figures a metrics scrape reads: one aggregate query each, on indexed or small sets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import HumanRequest, OutboxPost, utcnow


@dataclass(frozen=True)
class Backlog:
    pending_human_requests: int
    oldest_pending_human_request_seconds: float
    outbox_pending_posts: int
    oldest_outbox_post_seconds: float


def _age(since: datetime | None, now: datetime) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


async def backlog(session: AsyncSession) -> Backlog:
    """Pending askHuman questions and unsent outbox posts: how many, and the oldest's age."""
    now = utcnow()
    requests, oldest_request = (await session.execute(
        select(func.count(), func.min(HumanRequest.created_at))
        .where(HumanRequest.status == "pending"))).one()
    posts, oldest_post = (await session.execute(
        select(func.count(), func.min(OutboxPost.created_at))
        .where(OutboxPost.status == "pending"))).one()
    return Backlog(int(requests), _age(oldest_request, now), int(posts), _age(oldest_post, now))
