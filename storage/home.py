"""Queries of the app's Home tab: who opened it, which views are due, and the staff queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Conversation, HomeChange, HomeViewer, HumanRequest, utcnow


async def record_opened(session: AsyncSession, *, user_id: str, staff: bool,
                        now: datetime | None = None) -> None:
    """The person opened Home: their view is due now (an open is never held back by the
    refresh interval: the person is looking)."""
    now = now or utcnow()
    dialect_insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(HomeViewer.__table__).values(
        user_id=user_id, staff=staff, opened_at=now, due_at=now, published_at=None,
        failures=0)
    await session.execute(statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={"staff": staff, "opened_at": now, "due_at": now, "published_at": None}))


async def add_notice(session: AsyncSession, *, user_id: str, notice: str) -> bool:
    """Show `notice` at the top of this person's next Home view, published now; False when
    they have no Home view."""
    result = await session.execute(
        update(HomeViewer).where(HomeViewer.user_id == user_id)
        .values(notice=notice[:2000], due_at=utcnow(), published_at=None)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def note_change(session: AsyncSession) -> None:
    """A case changed: one insert in the change's own transaction (no lock other cases wait on)."""
    await session.execute(insert(HomeChange.__table__).values(changed_at=utcnow()))


async def consume_changes(session: AsyncSession, *, viewers_since: datetime,
                          limit: int = 1000) -> int:
    """Turn recorded case changes into due Home views of the staff who opened Home since
    `viewers_since`; the changes are deleted. Returns how many were consumed."""
    ids = list((await session.execute(
        select(HomeChange.id).order_by(HomeChange.id).limit(limit))).scalars())
    if not ids:
        return 0
    await session.execute(
        update(HomeViewer)
        .where(HomeViewer.staff.is_(True), HomeViewer.opened_at >= viewers_since,
               HomeViewer.due_at.is_(None))
        .values(due_at=utcnow()).execution_options(synchronize_session=False))
    await session.execute(delete(HomeChange).where(HomeChange.id.in_(ids))
                          .execution_options(synchronize_session=False))
    return len(ids)


@dataclass(frozen=True)
class Claimed:
    user_id: str
    staff: bool
    notice: str | None


async def due_viewers(session: AsyncSession, *, every: timedelta, limit: int = 50
                      ) -> list[tuple[str, datetime]]:
    """(user, due_at) of views due now and not published within `every`."""
    now = utcnow()
    rows = await session.execute(
        select(HomeViewer.user_id, HomeViewer.due_at)
        .where(HomeViewer.due_at <= now,
               or_(HomeViewer.published_at.is_(None), HomeViewer.published_at <= now - every))
        .order_by(HomeViewer.due_at).limit(limit))
    return [(user_id, due_at) for user_id, due_at in rows.all()]


async def claim(session: AsyncSession, *, user_id: str, due_at: datetime,
                every: timedelta) -> Claimed | None:
    """Take one due view for publishing (a conditional UPDATE: of two replicas, one wins); its
    notice is taken with it."""
    now = utcnow()
    viewer = await session.get(HomeViewer, user_id)
    if viewer is None:
        return None
    result = await session.execute(
        update(HomeViewer)
        .where(HomeViewer.user_id == user_id, HomeViewer.due_at == due_at,
               or_(HomeViewer.published_at.is_(None), HomeViewer.published_at <= now - every))
        .values(due_at=None, published_at=now, notice=None)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    return Claimed(viewer.user_id, viewer.staff, viewer.notice)


async def publish_failed(session: AsyncSession, *, user_id: str, error: str,
                         retry_at: datetime | None, notice: str | None) -> None:
    """A publish failed: due again at `retry_at` (None: not retried until the next change),
    keeping the notice it was to show."""
    values: dict[str, object] = {"failures": HomeViewer.failures + 1, "last_error": error[:200]}
    if notice:
        values["notice"] = func.coalesce(HomeViewer.notice, notice)
    if retry_at is not None:
        values["due_at"] = func.coalesce(HomeViewer.due_at, retry_at)
        values["published_at"] = None
    await session.execute(update(HomeViewer).where(HomeViewer.user_id == user_id)
                          .values(**values).execution_options(synchronize_session=False))


async def published(session: AsyncSession, *, user_id: str) -> None:
    await session.execute(update(HomeViewer).where(HomeViewer.user_id == user_id)
                          .values(failures=0, last_error=None)
                          .execution_options(synchronize_session=False))


async def forget_viewers(session: AsyncSession, *, opened_before: datetime) -> int:
    """Housekeeping: people who have not opened Home for long are no longer refreshed."""
    result = await session.execute(delete(HomeViewer).where(HomeViewer.opened_at < opened_before)
                                   .execution_options(synchronize_session=False))
    return result.rowcount or 0


@dataclass
class QueuedCase:
    """One case of the queue, with its oldest pending question (if any)."""

    conversation: Conversation
    pending: list[HumanRequest]


@dataclass
class Queue:
    mine: list[QueuedCase]
    unclaimed: list[QueuedCase]
    questions: list[QueuedCase]  # the bot's cases whose questions wait longest for staff
    more: int  # cases left out by the limits


async def staff_queue(session: AsyncSession, *, user_id: str, limit: int = 10) -> Queue:
    """The queue a staff member works from: their open cases, the unclaimed ones (waiting on
    staff, no owner), and the cases whose questions have waited longest; each list oldest
    wait first, at most `limit` long."""
    numbered = (Conversation.status == "open", Conversation.case_number.is_not(None))
    oldest = (select(HumanRequest.conversation_id, func.min(HumanRequest.created_at)
                     .label("since"))
              .where(HumanRequest.status == "pending")
              .group_by(HumanRequest.conversation_id).subquery())
    wait_order = (func.coalesce(Conversation.waiting_on_humans_since, oldest.c.since).is_(None),
                  func.coalesce(Conversation.waiting_on_humans_since, oldest.c.since),
                  Conversation.id)

    async def cases(*where: object, order: tuple[object, ...] = wait_order
                    ) -> tuple[list[Conversation], int]:
        base = (select(Conversation).outerjoin(oldest, oldest.c.conversation_id
                                               == Conversation.id).where(*numbered, *where))
        total = (await session.execute(
            select(func.count()).select_from(base.subquery()))).scalar_one()
        rows = await session.execute(base.order_by(*order).limit(limit))
        return list(rows.scalars()), total

    mine, mine_total = await cases(Conversation.assignee == user_id)
    unclaimed, unclaimed_total = await cases(Conversation.assignee == "humans")
    questions, questions_total = await cases(
        Conversation.assignee.not_in((user_id, "humans")), oldest.c.since.is_not(None),
        order=(oldest.c.since, Conversation.id))
    shown = mine + unclaimed + questions
    pending: dict[int, list[HumanRequest]] = {c.id: [] for c in shown}
    if shown:
        rows = await session.execute(
            select(HumanRequest).where(HumanRequest.conversation_id.in_(list(pending)),
                                       HumanRequest.status == "pending")
            .order_by(HumanRequest.created_at, HumanRequest.id))
        for request in rows.scalars():
            pending[request.conversation_id].append(request)
    more = (mine_total - len(mine)) + (unclaimed_total - len(unclaimed)) + (
        questions_total - len(questions))
    return Queue(mine=[QueuedCase(c, pending[c.id]) for c in mine],
                 unclaimed=[QueuedCase(c, pending[c.id]) for c in unclaimed],
                 questions=[QueuedCase(c, pending[c.id]) for c in questions], more=more)
