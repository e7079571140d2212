"""Follow-ups when humans are slow: reminders, escalation, give-up, holding notices, releases.

One named job per kind of follow-up. A timer runs them all once at start-up, then at the nearest
due time read from the database, and at the latest every `timers.check_every` (the safety net
for due times written by other replicas); APScheduler runs housekeeping. A job only *finds* due
rows: the due times live in the database (`storage.followups`), so a restart resumes them and a
downtime fires each due follow-up once, not once per missed interval. Each due row is then
claimed with a conditional UPDATE in its own transaction, together with the Slack posts it causes
(outbox rows) and any work item; only the claimer that wins goes on, so several replicas on one
PostgreSQL act as one bot. One failing row is logged and does not stop the rest of the batch; an
unreachable database is one warning, and the next check retries.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from storage.db import is_unavailable
from storage.models import Conversation, HumanRequest, utcnow

if TYPE_CHECKING:
    from bot.runtime import Services

log = logging.getLogger(__name__)

BATCH = 100
OUTAGE_RETRY = 5.0  # seconds between checks while the database cannot be reached
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
    """The follow-up jobs of one bot process, their timer, and the APScheduler for housekeeping.

    The timer sleeps until the nearest due time read from the database
    (`storage.followups.next_due_times`), then runs every follow-up job once (a *pass*), reads
    the nearest due time again and sleeps until it.
    `wake()` makes it re-read at once; it is called after each commit that writes a due time
    (`storage.followups.watch_due_times`). Every `timers.check_every` a pass runs anyway: the
    safety net for due times written by other replicas or other processes. One task runs the
    passes, so jobs of one process never overlap; claims keep replicas exact.
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        self._config = services.config
        self._timers = services.config.timers
        self._working = working_time(services.config)
        self._scheduler: AsyncIOScheduler | None = None
        self._timer: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._unwatch: Callable[[], None] | None = None
        self._stopping = False
        self._pass_started: datetime | None = None
        self._backlog: set[str] = set()  # kinds whose last run found a full batch
        self.armed_for: datetime | None = None  # the due time the timer sleeps until
        self.database_reachable = True
        self.jobs: dict[str, Job] = {
            "followups.give_up": self.give_up,
            "followups.escalate": self.escalate,
            "followups.remind": self.remind,
            "followups.notify_customers": self.notify_customers,
            "followups.release_idle": self.release_idle,
        }

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Run a pass now (follow-ups due during downtime fire once), then on the timer."""
        quiet = logging.getLogger("apscheduler.executors.default")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)  # "Running job ..." every hour otherwise
        self._stopping = False
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(self._housekeeping_job,
                          IntervalTrigger(seconds=self._timers.housekeeping_every.total_seconds()),
                          id="housekeeping", name="housekeeping", next_run_time=datetime.now(UTC),
                          max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.start()
        self._scheduler = scheduler
        self._unwatch = followups.watch_due_times(self._services.engine, self.wake)
        self._timer = asyncio.create_task(self._run_timer(), name="followups.timer")

    def wake(self) -> None:
        """A due time was written: re-read the nearest one now. Cheap; safe to call often."""
        self._woken.set()

    async def pause(self) -> None:
        """Stop the timer and housekeeping; the jobs stay callable (operators, tests)."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # the shutdown runs on the loop; let it before the loop goes
        self.armed_for = None

    async def stop(self) -> None:
        """Let a running pass finish its row (a claim and its posts commit together), then stop."""
        self._stopping = True
        self.wake()
        timer = self._timer
        if timer is not None:
            await asyncio.wait([timer], timeout=10)
        await self.pause()

    async def _run_timer(self) -> None:
        loop = asyncio.get_running_loop()
        every = self._timers.check_every.total_seconds()
        next_check = loop.time()  # the start-up pass
        due: datetime | None = None
        while not self._stopping:
            try:
                if loop.time() >= next_check or (due is not None and utcnow() >= due):
                    reachable = await self._pass()
                    next_check = loop.time() + (every if reachable else min(every, OUTAGE_RETRY))
                self._woken.clear()
                due = await self._nearest_due() if self.database_reachable else None
            except Exception:  # a bug must not stop the follow-ups: the next check retries
                log.exception("follow-up timer failed; retrying at the next check")
                next_check, due = loop.time() + every, None
            self.armed_for = due
            delay = next_check - loop.time()
            if due is not None:
                delay = min(delay, (due - utcnow()).total_seconds())
            if delay > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), delay)

    async def _pass(self) -> bool:
        """Run every follow-up job once; False when the database could not be reached."""
        self._pass_started = utcnow()
        for job_id, job in self.jobs.items():
            if self._stopping:
                break
            try:
                done = await job()
            except Exception as error:
                if is_unavailable(error):
                    self._unreachable(job_id, error)
                    return False
                log.exception("%s failed; the next check retries it", job_id)
                continue
            if done:
                log.info("%s: %d row(s) handled", job_id, done)
        self._reachable()
        return True

    async def _nearest_due(self) -> datetime | None:
        """The earliest due time the next pass would act on, or None (wait for the check).

        A kind whose earliest row was already due when the last pass started, and is still
        there, failed in that pass: the periodic check retries it, not a busy loop."""
        try:
            async with self._services.sessions() as session:
                nearest = await followups.next_due_times(
                    session, max_reminders=self._timers.max_reminders)
        except Exception as error:
            if not is_unavailable(error):
                log.exception("reading the next follow-up due time failed")
            else:
                self._unreachable("followups.timer", error)
            return None
        add = self._working.add
        by_kind = {
            "remind": nearest.remind_at,
            "escalate": nearest.escalate_at,
            "give_up": nearest.give_up_at,
            "notify_customers": nearest.waiting_since and add(
                nearest.waiting_since, self._timers.notify_customer_after),
            "release_idle": nearest.idle_since and add(
                nearest.idle_since, self._timers.release_after),
        }
        started = self._pass_started
        due = [at for kind, at in by_kind.items() if at is not None and (
            started is None or at > started or kind in self._backlog)]
        return min(due, default=None)

    def _unreachable(self, job_id: str, error: BaseException) -> None:
        if self.database_reachable:
            log.warning("%s: database unreachable (%s); follow-ups retry on the next check",
                        job_id, type(error).__name__)
        self.database_reachable = False

    def _reachable(self) -> None:
        if not self.database_reachable:
            log.warning("database reachable again; follow-ups resume")
        self.database_reachable = True

    async def _housekeeping_job(self) -> None:
        try:
            pruned = await self.housekeeping()
        except Exception as error:
            if is_unavailable(error):
                log.warning("housekeeping: database unreachable (%s); retried in %s",
                            type(error).__name__, self._timers.housekeeping_every)
            else:
                log.exception("housekeeping failed")
            return
        if pruned:
            log.info("housekeeping: %d row(s) pruned", pruned)

    async def run_due(self) -> int:
        """Run every follow-up job once, in order (operators, tests)."""
        total = 0
        for job in self.jobs.values():
            total += await job()
        return total

    async def _each(self, kind: str, rows: list[object],
                    handle: Callable[[object], Awaitable[int | None]]) -> int:
        """Handle due rows one by one; a failing row is logged and the next check retries it,
        a database outage ends the batch."""
        if len(rows) >= BATCH:
            self._backlog.add(kind)
        else:
            self._backlog.discard(kind)
        done = 0
        for row in rows:
            if self._stopping:
                break
            try:
                conversation_id = await handle(row)
            except Exception as error:
                if is_unavailable(error):
                    raise
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
