"""Queries on conversations (cases): find or create by thread, leases, assignment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from storage.human_requests import pending_in
from storage.models import (
    AssignmentChange,
    CaseCounter,
    Conversation,
    HumanRequest,
    Message,
    WorkItem,
    utcnow,
)
from storage.upserts import insert_new
from storage.work_items import WORK_ITEMS, is_due

THREAD = ("team_id", "channel_id", "thread_ts")  # a customer thread's conversation is unique

# The hot path's statements are built once: building one and its cache key costs about as much
# CPU as its round trip (tests/e2e/test_statement_cache.py, docs/performance.md). Those that
# return no objects are Core statements on the table: through the ORM (a mapped class or its
# attributes anywhere in it) a statement costs ~80 µs more CPU.
_TABLE = Conversation.__table__
_CLAIM = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("conversation"),
           or_(_TABLE.c.lease_until.is_(None), _TABLE.c.lease_until < bindparam("now"),
               _TABLE.c.lease_owner == bindparam("owner")))
    .values(lease_owner=bindparam("owner"), lease_until=bindparam("until")))
_RELEASE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("conversation"), _TABLE.c.lease_owner == bindparam("owner"))
    .values(lease_owner=None, lease_until=None))
_RELEASE_IF_IDLE = _RELEASE.where(~exists().where(
    WORK_ITEMS.c.conversation_id == _TABLE.c.id, is_due(bindparam("now"))))
_LOCK = (update(_TABLE).where(_TABLE.c.id == bindparam("conversation"))
         .values(updated_at=bindparam("now")))
# The pending-question test compares with the bound id, not the column: SQLite renders
# RETURNING columns unqualified, so `conversations.id` would read as the subquery's own id.
# It returns the mapped object, so it is the ORM form of `_LOCK` (a Core statement returns
# the row's columns instead).
_LOCK_FOR_STEP = (
    update(Conversation).where(Conversation.id == bindparam("conversation"))
    .values(updated_at=bindparam("now")).execution_options(synchronize_session=False)
    .returning(Conversation, exists().where(pending_in(bindparam("conversation")))))


async def get_or_create_conversation(
    session: AsyncSession, *, team_id: str, channel_id: str, thread_ts: str,
    customer_user_id: str | None = None, customer_name: str | None = None,
) -> Conversation:
    """The conversation of a customer thread; concurrent creators get the same row."""
    existing = await find_conversation_by_thread(session, channel_id=channel_id,
                                                 thread_ts=thread_ts)
    if existing is not None and existing.team_id == team_id:
        return existing
    await insert_new(session, Conversation.__table__, [dict(
        team_id=team_id, channel_id=channel_id, thread_ts=thread_ts,
        customer_user_id=customer_user_id, customer_name=customer_name,
        assignee="bot", status="open", created_at=utcnow(), updated_at=utcnow(),
    )], conflict=THREAD)
    conversation = (await session.execute(
        select(Conversation).where(
            Conversation.team_id == team_id,
            Conversation.channel_id == channel_id,
            Conversation.thread_ts == thread_ts,
        )
    )).scalar_one()
    if conversation.customer_user_id is None and customer_user_id:
        conversation.customer_user_id = customer_user_id
        conversation.customer_name = customer_name
    return conversation


async def create_customer_thread(
    session: AsyncSession, *, team_id: str, channel_id: str, thread_ts: str,
    customer_user_id: str, customer_name: str, text: str, meta: dict[str, Any],
) -> int | None:
    """A customer's new top-level message, in three Core statements: its conversation (the
    bot's, open, no case number until staff see it), the message opening its history, and a
    model turn for it. The conversation
    id, or None when the thread's conversation exists already (the caller then takes the
    general path). Rows are the same as get_or_create_conversation + add_message + add_work
    would write."""
    now = utcnow()
    conversation_id = (await insert_new(session, Conversation.__table__, [dict(
        team_id=team_id, channel_id=channel_id, thread_ts=thread_ts,
        customer_user_id=customer_user_id, customer_name=customer_name,
        assignee="bot", status="open", created_at=now, updated_at=now,
    )], conflict=THREAD, returning="id")).scalar_one_or_none()
    if conversation_id is None:
        return None
    message_id = (await session.execute(_INSERT_MESSAGE, {
        "conversation_id": conversation_id, "order": 0, "step_order": 0, "role": "user",
        "text": text, "slack_ts": thread_ts, "slack_user_id": customer_user_id,
        "metadata": meta, "status": "success", "created_at": now,
    })).scalar_one()
    await session.execute(_INSERT_WORK, dict(
        conversation_id=conversation_id, kind="respond", payload={"message_id": message_id},
        status="open", attempts=0, created_at=now))
    return int(conversation_id)


# Built once: parameters are passed at execution (no statement built per message).
_INSERT_MESSAGE = insert(Message.__table__).returning(Message.__table__.c.id)
_INSERT_WORK = insert(WorkItem.__table__)


async def find_conversation_by_thread(
    session: AsyncSession, *, channel_id: str, thread_ts: str
) -> Conversation | None:
    return (await session.execute(
        select(Conversation).where(
            Conversation.channel_id == channel_id, Conversation.thread_ts == thread_ts
        )
    )).scalars().first()


async def find_conversation_by_support_thread(
    session: AsyncSession, *, support_thread_ts: str
) -> Conversation | None:
    return (await session.execute(
        select(Conversation).where(Conversation.support_thread_ts == support_thread_ts)
    )).scalars().first()


async def get_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def get_conversation_by_case(session: AsyncSession, case_number: int) -> Conversation | None:
    return (await session.execute(
        select(Conversation).where(Conversation.case_number == case_number)
    )).scalars().first()


async def claim_conversation(
    session: AsyncSession, *, conversation_id: int, owner: str, lease: timedelta
) -> bool:
    """Take the conversation's lease if it is free or expired; exactly one claimer wins."""
    now = utcnow()
    result = await session.execute(_CLAIM, {"conversation": conversation_id, "now": now,
                                            "owner": owner, "until": now + lease})
    return result.rowcount == 1


async def release_conversation(session: AsyncSession, *, conversation_id: int, owner: str) -> None:
    await session.execute(_RELEASE, {"conversation": conversation_id, "owner": owner})


async def release_if_idle(session: AsyncSession, *, conversation_id: int, owner: str) -> bool:
    """Give the lease back unless due work waits, in one statement; True when given back
    (False: work is due, or the lease is not `owner`'s)."""
    result = await session.execute(_RELEASE_IF_IDLE, {"conversation": conversation_id,
                                                      "owner": owner, "now": utcnow()})
    return result.rowcount == 1


async def conversations_with_open_work(session: AsyncSession, *, limit: int = 50) -> list[int]:
    """Conversations that have due work and no live lease (the sweep's view)."""
    now = utcnow()
    rows = await session.execute(
        select(WorkItem.conversation_id)
        .join(Conversation, Conversation.id == WorkItem.conversation_id)
        .where(
            is_due(now),
            or_(Conversation.lease_until.is_(None), Conversation.lease_until < now),
        )
        .group_by(WorkItem.conversation_id)
        .order_by(func.min(WorkItem.id))
        .limit(limit)
    )
    return list(rows.scalars())


class AssigneeChanged(Exception):
    """Another transaction changed the case's assignee since this one read it."""

    def __init__(self, now_with: str | None) -> None:
        super().__init__(f"the case is now with {now_with}")
        self.now_with = now_with


async def change_assignee(
    session: AsyncSession, conversation: Conversation, *, to: str, by: str, reason: str
) -> AssignmentChange | None:
    """Record and apply a new assignee; returns None when nothing changes. The change applies
    only if the assignee is still the one this transaction read (a conditional UPDATE): of two
    people changing it at once, the second gets AssigneeChanged and changes nothing."""
    if conversation.assignee == to:
        return None
    old, active = conversation.assignee, utcnow() if to != "bot" else None
    applied = await session.execute(
        update(Conversation).where(Conversation.id == conversation.id,
                                   Conversation.assignee == old)
        .values(assignee=to, last_human_activity_at=active)
        .execution_options(synchronize_session=False))
    if applied.rowcount != 1:
        now_with = (await session.execute(select(Conversation.assignee).where(
            Conversation.id == conversation.id))).scalar_one_or_none()
        raise AssigneeChanged(now_with)
    set_committed_value(conversation, "assignee", to)
    set_committed_value(conversation, "last_human_activity_at", active)
    change = AssignmentChange(
        conversation_id=conversation.id, from_assignee=old, to_assignee=to, changed_by=by,
        reason=reason,
    )
    session.add(change)
    return change


async def list_open_conversations(session: AsyncSession, *, limit: int = 30) -> list[Conversation]:
    rows = await session.execute(
        select(Conversation)
        .where(Conversation.status == "open", Conversation.support_thread_ts.is_not(None))
        .order_by(Conversation.id.desc())
        .limit(limit)
    )
    return list(rows.scalars())


async def count_pending_requests(
    session: AsyncSession, conversation_ids: list[int]
) -> dict[int, int]:
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(HumanRequest.conversation_id, func.count())
        .where(HumanRequest.conversation_id.in_(conversation_ids), HumanRequest.status == "pending")
        .group_by(HumanRequest.conversation_id)
    )
    return {conversation_id: count for conversation_id, count in rows.all()}


def waiting_time(conversation: Conversation, now: datetime | None = None) -> timedelta | None:
    if conversation.waiting_on_humans_since is None:
        return None
    return (now or utcnow()) - conversation.waiting_on_humans_since


async def end_stale_wait(session: AsyncSession, *, conversation_id: int,
                         waiting_since: datetime) -> bool:
    """Stop a wait that outlived itself (the customer was answered since), only if it is still
    the wait that started at `waiting_since`: the compare-and-set form of
    `set_waiting_on_humans(conversation, False)`, for the timer that found it."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id,
               Conversation.waiting_on_humans_since == waiting_since)
        .values(waiting_on_humans_since=None, customer_notified_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def set_waiting_on_humans(conversation: Conversation, waiting: bool,
                          now: datetime | None = None) -> None:
    """The one place the waiting state changes. Waiting starts the clock the reminders, the
    customer's holding notice and the queue read (unless it already runs); not waiting stops
    it and forgets the holding notice, so the next wait gets its own."""
    if waiting:
        if conversation.waiting_on_humans_since is None:
            conversation.waiting_on_humans_since = now or utcnow()
            conversation.customer_notified_at = None
    else:
        conversation.waiting_on_humans_since = None
        conversation.customer_notified_at = None


async def lock_conversation(session: AsyncSession, conversation_id: int) -> None:
    """Serialise writers of one conversation until this transaction ends: updating its row
    takes the row lock on PostgreSQL and the write lock on SQLite."""
    await session.execute(_LOCK, {"conversation": conversation_id, "now": utcnow()})


async def lock_for_step(session: AsyncSession, conversation_id: int
                        ) -> tuple[Conversation, bool] | None:
    """The conversation, read by taking its lock as `lock_conversation` does, and whether a
    question to staff is pending: one statement."""
    row = (await session.execute(
        _LOCK_FOR_STEP, {"conversation": conversation_id, "now": utcnow()})).first()
    return None if row is None else (row[0], bool(row[1]))


async def number_case(session: AsyncSession, conversation: Conversation) -> int:
    """The case number staff see, given the first time the conversation is shown to them. The
    conversation is locked and read again (another transaction may have numbered it), and the
    counter row stays locked until commit: two cases never share a number, a case never gets
    two, and a rolled-back transaction gives its number back, so numbers have no gaps."""
    if conversation.case_number is not None:
        return conversation.case_number
    await lock_conversation(session, conversation.id)
    current = (await session.execute(
        select(Conversation.case_number).where(Conversation.id == conversation.id))).scalar_one()
    if current is not None:
        set_committed_value(conversation, "case_number", current)
    else:
        given = await session.execute(
            update(CaseCounter).where(CaseCounter.id == 1)
            .values(last=CaseCounter.last + 1).returning(CaseCounter.last)
            .execution_options(synchronize_session=False))
        conversation.case_number = given.scalar_one()
        await session.flush()
    return conversation.case_number
