"""Due follow-ups and their claims: reminders, escalations, give-ups, holding notices, releases.

Due times live in rows (`human_requests.remind_at` ...; a conversation's waiting and activity
times), so a restart neither loses nor repeats them. Finding due rows is a plain read; acting on
one first *claims* it with a conditional UPDATE that moves the row past the follow-up, and only the
transaction whose UPDATE matched (rowcount 1) goes on, on SQLite and PostgreSQL alike: with several
replicas each follow-up fires once. Functions take an `AsyncSession` and never commit; the caller
commits the claim together with the posts it queues.

`next_due_times` reads the nearest due time of each kind (the scheduler arms its timer with it),
and `watch_due_times` tells the scheduler when a commit wrote a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, event, func, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from storage.models import Conversation, HumanRequest, Message, UtcDateTime

NOT_ASSIGNED_TO_PEOPLE = ("bot", "humans")


@dataclass(frozen=True)
class DueRequest:
    id: int
    conversation_id: int
    reminders_sent: int


@dataclass(frozen=True)
class DueConversation:
    id: int
    since: datetime
    assignee: str


def _not_given_up(now: datetime) -> ColumnElement[bool]:
    # A request whose give-up is due is closed instead of being reminded or escalated.
    return or_(HumanRequest.give_up_at.is_(None), HumanRequest.give_up_at > now)


async def due_reminders(session: AsyncSession, *, now: datetime, max_reminders: int,
                        limit: int = 100) -> list[DueRequest]:
    rows = await session.execute(
        select(HumanRequest.id, HumanRequest.conversation_id, HumanRequest.reminders_sent)
        .where(HumanRequest.status == "pending", HumanRequest.remind_at.is_not(None),
               HumanRequest.remind_at <= now, HumanRequest.reminders_sent < max_reminders,
               _not_given_up(now))
        .order_by(HumanRequest.remind_at, HumanRequest.id)
        .limit(limit)
    )
    return [DueRequest(*row) for row in rows.all()]


async def claim_reminder(session: AsyncSession, *, request_id: int, seen_reminders: int,
                         next_remind_at: datetime | None) -> bool:
    """Count reminder `seen_reminders + 1` as sent and set the next due time (None: no more).
    False when another replica (or an answer) got there first."""
    result = await session.execute(
        update(HumanRequest)
        .where(HumanRequest.id == request_id, HumanRequest.status == "pending",
               HumanRequest.reminders_sent == seen_reminders)
        .values(reminders_sent=seen_reminders + 1, remind_at=next_remind_at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def due_escalations(session: AsyncSession, *, now: datetime,
                          limit: int = 100) -> list[DueRequest]:
    rows = await session.execute(
        select(HumanRequest.id, HumanRequest.conversation_id, HumanRequest.reminders_sent)
        .where(HumanRequest.status == "pending", HumanRequest.escalate_at.is_not(None),
               HumanRequest.escalate_at <= now, _not_given_up(now))
        .order_by(HumanRequest.escalate_at, HumanRequest.id)
        .limit(limit)
    )
    return [DueRequest(*row) for row in rows.all()]


async def claim_escalation(session: AsyncSession, *, request_id: int, now: datetime) -> bool:
    """Escalate once: clears `escalate_at`; False when someone else claimed it first."""
    result = await session.execute(
        update(HumanRequest)
        .where(HumanRequest.id == request_id, HumanRequest.status == "pending",
               HumanRequest.escalate_at.is_not(None), HumanRequest.escalate_at <= now)
        .values(escalate_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def due_give_ups(session: AsyncSession, *, now: datetime,
                       limit: int = 100) -> list[DueRequest]:
    """Pending requests whose give-up time has come. Their claim is the conditional close of
    the request itself (`storage.human_requests.close_request`), which an answer can also win."""
    rows = await session.execute(
        select(HumanRequest.id, HumanRequest.conversation_id, HumanRequest.reminders_sent)
        .where(HumanRequest.status == "pending", HumanRequest.give_up_at.is_not(None),
               HumanRequest.give_up_at <= now)
        .order_by(HumanRequest.give_up_at, HumanRequest.id)
        .limit(limit)
    )
    return [DueRequest(*row) for row in rows.all()]


def _not_told_in_this_wait() -> ColumnElement[bool]:
    # A notice from an earlier wait (one whose end did not reset it) does not count.
    return or_(Conversation.customer_notified_at.is_(None),
               Conversation.customer_notified_at < Conversation.waiting_on_humans_since)


async def waiting_customers(session: AsyncSession, *, waiting_since_before: datetime,
                            limit: int = 100) -> list[DueConversation]:
    """Open conversations whose customer has waited on staff since before the given time and
    was not told yet, longest waiting first."""
    rows = await session.execute(
        select(Conversation.id, Conversation.waiting_on_humans_since, Conversation.assignee)
        .where(Conversation.status == "open",
               Conversation.waiting_on_humans_since.is_not(None),
               Conversation.waiting_on_humans_since <= waiting_since_before,
               _not_told_in_this_wait())
        .order_by(Conversation.waiting_on_humans_since, Conversation.id)
        .limit(limit)
    )
    return [DueConversation(*row) for row in rows.all()]


async def claim_holding_notice(session: AsyncSession, *, conversation_id: int,
                               waiting_since: datetime, now: datetime) -> bool:
    """Mark the customer as told (once per wait); False when already told, or when the wait
    ended or restarted in the meantime."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id,
               Conversation.waiting_on_humans_since.is_not(None),
               Conversation.waiting_on_humans_since <= waiting_since,
               _not_told_in_this_wait())
        .values(customer_notified_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _last_activity() -> ColumnElement[datetime]:
    return func.coalesce(Conversation.last_human_activity_at, Conversation.created_at)


async def idle_person_owned(session: AsyncSession, *, idle_since_before: datetime,
                            limit: int = 100) -> list[DueConversation]:
    """Open conversations owned by one staff member with no human activity since before the
    given time, idlest first."""
    rows = await session.execute(
        select(Conversation.id, _last_activity(), Conversation.assignee)
        .where(Conversation.status == "open",
               Conversation.assignee.not_in(NOT_ASSIGNED_TO_PEOPLE),
               _last_activity() <= idle_since_before)
        .order_by(_last_activity(), Conversation.id)
        .limit(limit)
    )
    return [DueConversation(*row) for row in rows.all()]


async def claim_release(session: AsyncSession, *, conversation_id: int, assignee: str,
                        idle_since: datetime, now: datetime) -> bool:
    """Claim the release of an idle case: it is still `assignee`'s and nobody acted since
    `idle_since`. Touches the activity time so a concurrent claim fails; the caller then
    changes the assignee (and its audit row) in the same transaction."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.assignee == assignee,
               _last_activity() <= idle_since)
        .values(last_human_activity_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def last_message_role(session: AsyncSession, conversation_id: int) -> str | None:
    """The role of the conversation's latest successful message (`user`: the customer spoke
    last and nobody answered yet)."""
    return (await session.execute(
        select(Message.role)
        .where(Message.conversation_id == conversation_id, Message.status == "success")
        .order_by(Message.order.desc(), Message.step_order.desc())
        .limit(1)
    )).scalar_one_or_none()



@dataclass(frozen=True)
class NextDue:
    """The earliest due time of each kind of follow-up (None: nothing of that kind waits).
    `waiting_since` and `idle_since` are the oldest starts of a wait; the scheduler adds the
    configured durations (in working time) to them."""

    remind_at: datetime | None
    escalate_at: datetime | None
    give_up_at: datetime | None
    waiting_since: datetime | None
    idle_since: datetime | None


def _earliest(column: Any, *where: ColumnElement[bool]) -> Any:
    return select(func.min(column, type_=UtcDateTime())).where(*where).scalar_subquery()


async def next_due_times(session: AsyncSession, *, max_reminders: int) -> NextDue:
    """One read of the nearest due time per kind, over the rows the due queries above find."""
    pending = HumanRequest.status == "pending"
    row = (await session.execute(select(
        _earliest(HumanRequest.remind_at, pending, HumanRequest.remind_at.is_not(None),
                  HumanRequest.reminders_sent < max_reminders),
        _earliest(HumanRequest.escalate_at, pending, HumanRequest.escalate_at.is_not(None)),
        _earliest(HumanRequest.give_up_at, pending, HumanRequest.give_up_at.is_not(None)),
        _earliest(Conversation.waiting_on_humans_since, Conversation.status == "open",
                  Conversation.waiting_on_humans_since.is_not(None), _not_told_in_this_wait()),
        _earliest(_last_activity(), Conversation.status == "open",
                  Conversation.assignee.not_in(NOT_ASSIGNED_TO_PEOPLE)),
    ))).one()
    return NextDue(*row)


# Columns whose change can bring a follow-up closer: a new question's due times, a wait that
# starts, a case handed to a person.
_DUE_COLUMNS: dict[type, tuple[str, ...]] = {
    HumanRequest: ("remind_at", "escalate_at", "give_up_at"),
    Conversation: ("waiting_on_humans_since", "customer_notified_at", "last_human_activity_at",
                   "assignee", "status"),
}
_WROTE_DUE_TIME = "followups.wrote_due_time"


def _writes_due_time(obj: object, *, new: bool) -> bool:
    columns = _DUE_COLUMNS.get(type(obj), ())
    if new:
        return any(getattr(obj, name, None) is not None for name in columns[:3])
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in columns)


def watch_due_times(engine: AsyncEngine, callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` after each commit on `engine` whose ORM changes touched a follow-up due
    time (bulk UPDATE statements are not seen). Returns the function that stops watching."""
    sync_engine = engine.sync_engine

    def after_flush(session: Session, _context: object) -> None:
        if session.bind is sync_engine and (
                any(_writes_due_time(obj, new=True) for obj in session.new)
                or any(_writes_due_time(obj, new=False) for obj in session.dirty)):
            session.info[_WROTE_DUE_TIME] = True

    def after_commit(session: Session) -> None:
        if session.info.pop(_WROTE_DUE_TIME, False):
            callback()

    def after_rollback(session: Session) -> None:
        session.info.pop(_WROTE_DUE_TIME, None)

    hooks = (("after_flush", after_flush), ("after_commit", after_commit),
             ("after_rollback", after_rollback))
    for name, hook in hooks:
        event.listen(Session, name, hook)

    def stop() -> None:
        for name, hook in hooks:
            if event.contains(Session, name, hook):
                event.remove(Session, name, hook)

    return stop


def _last_message_at() -> Any:
    return (select(func.max(Message.created_at))
            .where(Message.conversation_id == Conversation.id).scalar_subquery())


def _last_message_role() -> Any:
    return (select(Message.role).where(Message.conversation_id == Conversation.id)
            .order_by(Message.order.desc(), Message.step_order.desc()).limit(1)
            .scalar_subquery())


def _answered_alone_and_quiet(quiet_since: datetime) -> ColumnElement[bool]:
    """Open, with the bot, never shown to staff (no case number), no question pending, the
    bot's answer last and nothing since `quiet_since`."""
    return (
        (Conversation.status == "open") & (Conversation.assignee == "bot")
        & Conversation.case_number.is_(None)
        & ~select(HumanRequest.id).where(HumanRequest.conversation_id == Conversation.id,
                                         HumanRequest.status == "pending").exists()
        & (_last_message_role() == "assistant")
        & (_last_message_at() <= quiet_since))


async def answered_alone_and_quiet(session: AsyncSession, *, quiet_since: datetime,
                                   limit: int = 100) -> list[int]:
    """Conversations the bot answered alone whose customer has been quiet since before the
    given time, quietest first."""
    rows = await session.execute(
        select(Conversation.id).where(_answered_alone_and_quiet(quiet_since))
        .order_by(_last_message_at(), Conversation.id).limit(limit))
    return list(rows.scalars())


async def claim_close_answered(session: AsyncSession, *, conversation_id: int,
                               quiet_since: datetime, now: datetime) -> bool:
    """Close one such conversation; False when it changed meanwhile (the customer wrote, staff
    stepped in) or another replica closed it."""
    result = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, _answered_alone_and_quiet(quiet_since))
        .values(status="resolved", resolved_at=now)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1
