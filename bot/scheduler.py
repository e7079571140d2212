"""Follow-ups when humans are slow: reminders, escalation, give-up, holding notices, releases.

APScheduler's `AsyncIOScheduler` runs one named interval job per kind of follow-up (every
`timers.check_every`, and once at start-up). A job only *finds* due rows: the due times live in
the database (`storage.followups`), so a restart resumes them and a downtime fires each due
follow-up once, not once per missed interval. Each due row is then claimed with a conditional
UPDATE in its own transaction, together with the Slack posts it causes (outbox rows) and any work
item; only the claimer that wins goes on, so several replicas on one PostgreSQL act as one bot.
One failing row is logged and does not stop the rest of the batch.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.agent.turn import needs_reply
from bot.followup_times import (
    next_reminder_at,
    working_time,
    working_time_between,
    working_zone,
)
from bot.services.outbox import SUPPORT_THREAD
from bot.slack.blocks import thread_link
from storage import conversations, events, followups, human_requests, messages, work
from storage.models import Conversation, HumanRequest, utcnow

if TYPE_CHECKING:
    from bot.runtime import Services

log = logging.getLogger(__name__)

BATCH = 100
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_SUBTEAM_ID = re.compile(r"^S[A-Z0-9]+$")

Job = Callable[[], Awaitable[int]]


def mention(entry: str) -> str:
    """An on-call entry as a Slack mention: `U123` → `<@U123>`, `S123` → `<!subteam^S123>`;
    anything else (`<!subteam^S123>`, `<!here>`) is passed through."""
    entry = entry.strip()
    if _USER_ID.match(entry):
        return f"<@{entry}>"
    if _SUBTEAM_ID.match(entry):
        return f"<!subteam^{entry}>"
    return entry


def oncall_mentions(oncall: list[str]) -> str:
    return " ".join(mention(entry) for entry in oncall if entry.strip())


class FollowUpScheduler:
    """The named follow-up jobs of one bot process, and the APScheduler that runs them."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._config = services.config
        self._timers = services.config.timers
        self._working = working_time(services.config)
        self._scheduler: AsyncIOScheduler | None = None
        self._in_flight: set[asyncio.Task[object]] = set()
        self._stopping = False
        self.jobs: dict[str, Job] = {
            "followups.give_up": self.give_up,
            "followups.escalate": self.escalate,
            "followups.remind": self.remind,
            "followups.notify_customers": self.notify_customers,
            "followups.release_idle": self.release_idle,
        }

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        quiet = logging.getLogger("apscheduler.executors.default")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)  # "Running job ..." every few seconds otherwise
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        every = self._timers.check_every.total_seconds()
        for job_id, job in self.jobs.items():
            scheduler.add_job(self._guarded(job_id, job), IntervalTrigger(seconds=every),
                              id=job_id, name=job_id, next_run_time=now, max_instances=1,
                              coalesce=True, misfire_grace_time=None)
        scheduler.add_job(self._guarded("housekeeping", self.housekeeping),
                          IntervalTrigger(seconds=self._timers.housekeeping_every.total_seconds()),
                          id="housekeeping", name="housekeeping", next_run_time=now,
                          max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Let running jobs finish their row (a claim and its posts commit together), then stop."""
        self._stopping = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.pause()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=10)
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # the shutdown runs on the loop; let it before the loop goes

    def _guarded(self, job_id: str, job: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if self._stopping:
                return
            task = asyncio.current_task()
            if task is not None:
                self._in_flight.add(task)
            try:
                done = await job()
                if done:
                    log.info("%s: %d row(s) handled", job_id, done)
            except Exception:
                log.exception("%s failed", job_id)
            finally:
                if task is not None:
                    self._in_flight.discard(task)
        run.__name__ = job_id.replace(".", "_")
        return run

    async def run_due(self) -> int:
        """Run every follow-up job once, in order (start-up catch-up, operators, tests)."""
        total = 0
        for job in self.jobs.values():
            total += await job()
        return total

    async def _each(self, kind: str, rows: list[object],
                    handle: Callable[[object], Awaitable[int | None]]) -> int:
        done = 0
        for row in rows:
            if self._stopping:
                break
            try:
                conversation_id = await handle(row)
            except Exception:
                log.exception("%s: follow-up of %r failed; the next check retries it", kind, row)
                continue
            if conversation_id is not None:
                done += 1
                self._services.worker.kick(conversation_id)
        return done

    # give-up ---------------------------------------------------------------------------------
    async def give_up(self) -> int:
        now = utcnow()
        async with self._services.sessions() as session:
            due = await followups.due_give_ups(session, now=now, limit=BATCH)
        return await self._each("give_up", due, lambda row: self._give_up_one(row, now))

    async def _give_up_one(self, row: followups.DueRequest, now: datetime) -> int | None:
        async with self._services.sessions() as session:
            request = await human_requests.get_request(session, row.id)
            if request is None or request.status != "pending":
                return None
            won = await self._services.human_requests.close_in_session(
                session, request, status="expired", result=texts.request_expired_result(),
                by="scheduler", name="scheduler", human=False)
            if not won:  # answered (or closed) a moment ago: the answer wins
                await session.rollback()
                return None
            conversation = await conversations.get_conversation(session, request.conversation_id)
            remaining = await human_requests.pending_requests(session, request.conversation_id)
            await self._support_note(
                session, conversation, key=f"expired:{request.id}",
                text=texts.request_expired_staff(request.number, now - request.created_at))
            if any(other.message_id == request.message_id for other in remaining):
                await work.add_work(session, conversation_id=conversation.id, kind="flush")
            else:  # the step has no pending question left: the model tells the customer
                await work.add_work(session, conversation_id=conversation.id, kind="respond")
            if not remaining:
                conversation.waiting_on_humans_since = None
                conversation.customer_notified_at = None
            await session.commit()
            return conversation.id

    # escalation ------------------------------------------------------------------------------
    async def escalate(self) -> int:
        now = utcnow()
        async with self._services.sessions() as session:
            due = await followups.due_escalations(session, now=now, limit=BATCH)
        return await self._each("escalate", due, lambda row: self._escalate_one(row, now))

    async def _escalate_one(self, row: followups.DueRequest, now: datetime) -> int | None:
        async with self._services.sessions() as session:
            if not await followups.claim_escalation(session, request_id=row.id, now=now):
                await session.rollback()
                return None
            request, conversation = await self._request_and_case(session, row.id)
            support = self._config.channels.support
            link = (thread_link(support, conversation.support_thread_ts)
                    if conversation.support_thread_ts else None)
            await work.add_post(
                session, key=f"escalate:{request.id}", method="chat.postMessage",
                conversation_id=conversation.id,
                args={"channel": self._config.channels.escalation or support,
                      "text": texts.escalation(self._case(conversation), request.number,
                                               request.question, now - request.created_at,
                                               link)})
            await work.add_work(session, conversation_id=conversation.id, kind="flush")
            await session.commit()
            return conversation.id

    # reminders -------------------------------------------------------------------------------
    async def remind(self) -> int:
        now = utcnow()
        async with self._services.sessions() as session:
            due = await followups.due_reminders(
                session, now=now, max_reminders=self._timers.max_reminders, limit=BATCH)
        return await self._each("remind", due, lambda row: self._remind_one(row, now))

    async def _remind_one(self, row: followups.DueRequest, now: datetime) -> int | None:
        sent = row.reminders_sent + 1
        async with self._services.sessions() as session:
            claimed = await followups.claim_reminder(
                session, request_id=row.id, seen_reminders=row.reminders_sent,
                next_remind_at=next_reminder_at(self._timers, self._working, now=now,
                                                reminders_sent=sent))
            if not claimed:
                await session.rollback()
                return None
            request, conversation = await self._request_and_case(session, row.id)
            await self._support_note(
                session, conversation, key=f"remind:{request.id}:{sent}",
                text=texts.reminder(self._case(conversation), request.number, request.question,
                                    oncall_mentions(self._config.staff.oncall), sent,
                                    max(self._timers.max_reminders, sent)))
            await work.add_work(session, conversation_id=conversation.id, kind="flush")
            await session.commit()
            return conversation.id

    # the customer's holding notice -----------------------------------------------------------
    async def notify_customers(self) -> int:
        now = utcnow()
        wait = self._timers.notify_customer_after
        async with self._services.sessions() as session:
            candidates = await followups.waiting_customers(
                session, waiting_since_before=now - wait, limit=BATCH)
        due = self._waited_long_enough(candidates, wait, now)
        return await self._each("notify_customers", due, lambda row: self._notify_one(row, now))

    def _waited_long_enough(self, candidates: list[followups.DueConversation],
                            wait: timedelta, now: datetime) -> list[followups.DueConversation]:
        """Rows (longest waiting first) whose wait, in working time, has reached `wait`."""
        due = []
        for row in candidates:
            if working_time_between(self._working, row.since, now) < wait:
                break  # ordered by wait: once one has not waited long enough, none has
            due.append(row)
        return due

    async def _notify_one(self, row: followups.DueConversation, now: datetime) -> int | None:
        async with self._services.sessions() as session:
            if not await self._still_waiting(session, row.id):
                # Answered since (e.g. a staff reply relayed to the customer): nobody waits.
                await followups.end_stale_wait(session, conversation_id=row.id,
                                               waiting_since=row.since)
                await session.commit()
                return None
            if not await followups.claim_holding_notice(
                    session, conversation_id=row.id, waiting_since=row.since, now=now):
                await session.rollback()
                return None
            conversation = await conversations.get_conversation(session, row.id)
            if self._working.is_open(now):
                text = texts.customer_holding_notice()
            else:
                text = texts.customer_holding_notice_after_hours(texts.team_back_at(
                    self._working.next_open(now), working_zone(self._config)))
            await work.add_post(
                session, key=f"holding:{conversation.id}:{row.since.timestamp():.6f}",
                method="chat.postMessage", conversation_id=conversation.id,
                args={"channel": conversation.channel_id, "thread_ts": conversation.thread_ts,
                      "text": text})
            await work.add_work(session, conversation_id=conversation.id, kind="flush")
            await session.commit()
            return conversation.id

    @staticmethod
    async def _still_waiting(session: AsyncSession, conversation_id: int) -> bool:
        """A question is pending with staff, or the customer spoke last."""
        if await human_requests.pending_requests(session, conversation_id):
            return True
        return await followups.last_message_role(session, conversation_id) == "user"

    # release of idle cases owned by one person -----------------------------------------------
    async def release_idle(self) -> int:
        now = utcnow()
        idle = self._timers.release_after
        async with self._services.sessions() as session:
            candidates = await followups.idle_person_owned(
                session, idle_since_before=now - idle, limit=BATCH)
        due = self._waited_long_enough(candidates, idle, now)
        return await self._each("release_idle", due, lambda row: self._release_one(row, now))

    async def _release_one(self, row: followups.DueConversation, now: datetime) -> int | None:
        to = self._timers.release_to
        async with self._services.sessions() as session:
            if not await followups.claim_release(session, conversation_id=row.id,
                                                 assignee=row.assignee, idle_since=row.since,
                                                 now=now):
                await session.rollback()
                return None
            conversation = await conversations.get_conversation(session, row.id)
            idle = now - row.since
            change = await conversations.change_assignee(
                session, conversation, to=to, by="scheduler", reason=texts.release_reason(idle))
            if change is None:
                await session.rollback()
                return None
            await session.flush()
            await self._support_note(
                session, conversation, key=f"release:{conversation.id}:{change.id}",
                text=texts.case_released(self._case(conversation), row.assignee, idle, to))
            kind = "flush"
            if to == "bot":
                conversation.waiting_on_humans_since = None
                conversation.customer_notified_at = None
                history = await messages.list_history(session, conversation.id)
                pending = await human_requests.pending_requests(session, conversation.id)
                if needs_reply(history) and not pending:
                    kind = "respond"  # the customer's last message is still unanswered
            await work.add_work(session, conversation_id=conversation.id, kind=kind)
            await session.commit()
            return conversation.id

    # housekeeping ----------------------------------------------------------------------------
    async def housekeeping(self) -> int:
        """Prune de-duplication keys and finished work/outbox rows older than the retention."""
        older_than = utcnow() - self._timers.retention
        async with self._services.sessions() as session:
            pruned = await events.prune_received(session, older_than=older_than)
            pruned += await work.prune_finished(session, older_than=older_than)
            await session.commit()
        return pruned

    # helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _case(conversation: Conversation) -> int:
        return conversation.case_number or conversation.id

    async def _request_and_case(self, session: AsyncSession, request_id: int,
                                ) -> tuple[HumanRequest, Conversation]:
        request = await human_requests.get_request(session, request_id)
        conversation = await conversations.get_conversation(session, request.conversation_id)
        return request, conversation

    async def _support_note(self, session: AsyncSession, conversation: Conversation, *,
                            key: str, text: str) -> None:
        await work.add_post(
            session, key=key, method="chat.postMessage", conversation_id=conversation.id,
            args={"channel": self._config.channels.support, "thread_ts": SUPPORT_THREAD,
                  "text": text})
