"""Follow-ups when humans are slow: reminders, escalation, give-up, holding notices, releases,
and housekeeping. The rules live here; `bot.process.scheduler` decides when they run.

A job only *finds* due rows: the due times live in the database (`storage.followups`), so a
restart resumes them and a downtime fires each due follow-up once, not once per missed interval.
Each due row is then claimed with a conditional UPDATE in its own transaction, together with the
Slack posts it causes (outbox rows) and any work item; only the claimer that wins goes on, so
several replicas on one PostgreSQL act as one bot. One failing row is logged and does not stop
the rest of the batch; an unreachable database ends the batch (the caller retries).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agent.loop import queue_next_step
from bot.config import AppConfig
from bot.toolkit import metrics, texts
from bot.toolkit.blocks import thread_link
from bot.toolkit.case_card import refresh_case_card
from bot.toolkit.due_times import next_reminder_at, working_time, working_time_between, working_zone
from bot.toolkit.posts import PostQueue, wake
from bot.usecases.human_answers import HumanAnswers
from bot.usecases.ratings import Ratings
from storage import conversations, events, followups, human_requests, outbox_posts, work_items
from storage.db import is_unavailable
from storage.models import Conversation, HumanRequest, utcnow

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


class FollowUps:
    """The follow-up jobs: each finds its due rows, claims them one by one and queues what
    follows; `kick` starts a worker on a conversation that got work."""

    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 posts: PostQueue, answers: HumanAnswers, kick: Callable[[int], None], *,
                 ratings: Ratings | None = None) -> None:
        self._config = config
        self._timers = config.timers
        self._working = working_time(config)
        self._sessions = sessions
        self._posts = posts
        self._answers = answers
        self._kick = kick
        self._ratings = ratings
        self._backlog: set[str] = set()  # kinds whose last run found a full batch
        self.stopping = False
        self.jobs: dict[str, Job] = {
            "followups.give_up": self.give_up,
            "followups.escalate": self.escalate,
            "followups.remind": self.remind,
            "followups.notify_customers": self.notify_customers,
            "followups.release_idle": self.release_idle,
            "followups.close_answered": self.close_answered,
        }

    async def next_due_at(self, pass_started: datetime | None) -> datetime | None:
        """The earliest due time the next pass would act on, or None (wait for the check).

        A kind whose earliest row was already due when the last pass started, and is still
        there, failed in that pass: the periodic check retries it, not a busy loop."""
        async with self._sessions() as session:
            nearest = await followups.next_due_times(
                session, max_reminders=self._timers.max_reminders)
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
        due = [at for kind, at in by_kind.items() if at is not None and (
            pass_started is None or at > pass_started or kind in self._backlog)]
        return min(due, default=None)

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
            if self.stopping:
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
                metrics.followup_fired(kind)
                self._kick(conversation_id)
        return done

    # give-up ---------------------------------------------------------------------------------
    async def give_up(self) -> int:
        now = utcnow()
        async with self._sessions() as session:
            due = await followups.due_give_ups(session, now=now, limit=BATCH)
        return await self._each("give_up", due, lambda row: self._give_up_one(row, now))

    async def _give_up_one(self, row: followups.DueRequest, now: datetime) -> int | None:
        async with self._sessions() as session:
            request = await human_requests.get_request(session, row.id)
            if request is None or request.status != "pending":
                return None
            if not await self._answers.expire(
                    session, request,
                    staff_note=texts.request_expired_staff(request.number,
                                                           now - request.created_at)):
                await session.rollback()  # answered (or closed) a moment ago: the answer wins
                return None
            conversation_id = request.conversation_id
            await session.commit()
            return conversation_id

    # escalation ------------------------------------------------------------------------------
    async def escalate(self) -> int:
        now = utcnow()
        async with self._sessions() as session:
            due = await followups.due_escalations(session, now=now, limit=BATCH)
        return await self._each("escalate", due, lambda row: self._escalate_one(row, now))

    async def _escalate_one(self, row: followups.DueRequest, now: datetime) -> int | None:
        async with self._sessions() as session:
            if not await followups.claim_escalation(session, request_id=row.id, now=now):
                await session.rollback()
                return None
            request, conversation = await self._request_and_case(session, row.id)
            link = (thread_link(self._posts.support_channel, conversation.support_thread_ts)
                    if conversation.support_thread_ts else None)
            await self._posts.to_escalation_channel(
                session, conversation,
                texts.escalation(conversation.case_number, request.number, request.question,
                                 now - request.created_at, link),
                key=f"escalate:{request.id}")
            await wake(session, conversation.id)
            await session.commit()
            return conversation.id

    # reminders -------------------------------------------------------------------------------
    async def remind(self) -> int:
        now = utcnow()
        async with self._sessions() as session:
            due = await followups.due_reminders(
                session, now=now, max_reminders=self._timers.max_reminders, limit=BATCH)
        return await self._each("remind", due, lambda row: self._remind_one(row, now))

    async def _remind_one(self, row: followups.DueRequest, now: datetime) -> int | None:
        sent = row.reminders_sent + 1
        async with self._sessions() as session:
            request, conversation = await self._request_and_case(session, row.id)
            # The account's tier may remind more often (app.yaml `timers.tiers`).
            timers = self._config.timers_for(conversation.channel_id)
            claimed = await followups.claim_reminder(
                session, request_id=row.id, seen_reminders=row.reminders_sent,
                next_remind_at=next_reminder_at(timers, self._working, now=now,
                                                reminders_sent=sent))
            if not claimed:
                await session.rollback()
                return None
            await self._posts.to_case_thread(
                session, conversation,
                texts.reminder(conversation.case_number, request.number, request.question,
                               oncall_mentions(self._config.staff.oncall), sent,
                               max(self._timers.max_reminders, sent)),
                key=f"remind:{request.id}:{sent}")
            await refresh_case_card(session, self._posts, conversation)
            await wake(session, conversation.id)
            await session.commit()
            return conversation.id

    # the customer's holding notice -----------------------------------------------------------
    async def notify_customers(self) -> int:
        now = utcnow()
        wait = self._timers.notify_customer_after
        async with self._sessions() as session:
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
        async with self._sessions() as session:
            if not await self._still_waiting(session, row.id):
                # Answered since (e.g. a staff reply relayed to the customer): nobody waits.
                await conversations.end_stale_wait(session, conversation_id=row.id,
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
            await self._posts.to_customer(
                session, conversation, text,
                key=f"holding:{conversation.id}:{row.since.timestamp():.6f}")
            await wake(session, conversation.id)
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
        async with self._sessions() as session:
            candidates = await followups.idle_person_owned(
                session, idle_since_before=now - idle, limit=BATCH)
        due = self._waited_long_enough(candidates, idle, now)
        return await self._each("release_idle", due, lambda row: self._release_one(row, now))

    async def _release_one(self, row: followups.DueConversation, now: datetime) -> int | None:
        to = self._timers.release_to
        async with self._sessions() as session:
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
            await self._posts.to_case_thread(
                session, conversation,
                texts.case_released(conversation.case_number, row.assignee, idle, to),
                key=f"release:{conversation.id}:{change.id}")
            if to == "bot":
                conversations.set_waiting_on_humans(conversation, False)
            # Back with the bot, the customer's last message may still be unanswered.
            await queue_next_step(session, conversation)
            await session.commit()
            return conversation.id

    # conversations the bot answered alone ------------------------------------------------------
    async def close_answered(self) -> int:
        """Close conversations the bot answered alone once the customer has been quiet for
        `timers.close_answered_after` (off when unset); with `ratings.after_bot_alone` the
        customer is asked for a rating. Checked at every pass (every `timers.check_every`)."""
        after = self._timers.close_answered_after
        if after is None:
            return 0
        now = utcnow()
        async with self._sessions() as session:
            due = await followups.answered_alone_and_quiet(session, quiet_since=now - after,
                                                           limit=BATCH)
        return await self._each("close_answered", due,
                                lambda row: self._close_answered_one(row, now - after, now))

    async def _close_answered_one(self, conversation_id: int, quiet_since: datetime,
                                  now: datetime) -> int | None:
        async with self._sessions() as session:
            if not await followups.claim_close_answered(
                    session, conversation_id=conversation_id, quiet_since=quiet_since, now=now):
                await session.rollback()
                return None
            conversation = await conversations.get_conversation(session, conversation_id)
            if self._ratings is not None and self._config.ratings.after_bot_alone:
                await self._ratings.offer(session, conversation)
            await session.commit()
            return conversation_id

    # housekeeping ----------------------------------------------------------------------------
    async def housekeeping(self) -> int:
        """Prune de-duplication keys and finished work/outbox rows older than the retention."""
        older_than = utcnow() - self._timers.retention
        async with self._sessions() as session:
            pruned = await events.prune_received(session, older_than=older_than)
            pruned += await work_items.prune_finished_work(session, older_than=older_than)
            pruned += await outbox_posts.prune_finished_posts(session, older_than=older_than)
            await session.commit()
        return pruned

    # helpers ---------------------------------------------------------------------------------
    async def _request_and_case(self, session: AsyncSession, request_id: int,
                                ) -> tuple[HumanRequest, Conversation]:
        request = await human_requests.get_request(session, request_id)
        conversation = await conversations.get_conversation(session, request.conversation_id)
        return request, conversation
