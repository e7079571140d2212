"""The staff queue: the app's Home tab, kept up to date, and `/handoff list`.

A Home view is per-person state, recomputed from the database each time: it does not go
through the outbox (which delivers each post once, in order, to customers and the support
channel). It is published directly with `views.publish`, by a refresher task, and what must
not be lost is written down first, in the database:

- opening Home (`app_home_opened`) records the person (`home_viewers`) with their view due now;
- every case change writes a `home_changes` row in its own transaction (`note_case_changed`,
  called where the case card is redrawn): an insert, so cases never wait on each other or on
  Slack for it;
- the refresher turns those rows into due views of the staff who opened Home within
  `home.viewers_for`, and publishes each at most once per `home.refresh_every` (a conditional
  UPDATE claims it, so replicas publish once). A failed publish (rate limit, outage) is due
  again after Slack's `Retry-After`; a permanent one waits for the next change. Case work never
  waits on it and never fails because of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import AppConfig
from bot.toolkit import texts
from bot.toolkit.blocks import (
    HOME_MAX_BLOCKS,
    MESSAGE_MAX_BLOCKS,
    QuestionPart,
    QueueEntry,
    home_not_staff_view,
    home_view,
    queue_blocks,
    thread_link,
)
from bot.toolkit.slack_api import SlackGateway, failure_of
from bot.usecases.people import People
from storage import conversations
from storage import home as home_rows
from storage.db import is_unavailable
from storage.models import utcnow

log = logging.getLogger(__name__)

RETRY_WITHOUT_RETRY_AFTER = timedelta(seconds=5)
CLEANUP_EVERY = 600.0  # seconds between two clean-ups of people who stopped using Home


class Home:
    def __init__(self, config: AppConfig, sessions: async_sessionmaker[AsyncSession],
                 slack: SlackGateway, people: People) -> None:
        self._config = config
        self._sessions = sessions
        self._slack = slack
        self._people = people
        self._every = config.home.refresh_every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def slack(self) -> SlackGateway:
        return self._slack

    # what people do ------------------------------------------------------------------------
    async def opened(self, user_id: str, tab: str | None) -> None:
        """`app_home_opened`: record the person, their view due now, and wake the refresher
        (the publish happens after the ack)."""
        if tab not in (None, "home"):
            return
        staff = await self._people.is_staff(user_id)
        async with self._sessions() as session:
            await home_rows.record_opened(session, user_id=user_id, staff=staff)
            await session.commit()
        self.kick()

    async def refused(self, user_id: str, text: str) -> bool:
        """A click from Home changed nothing: the redrawn view says why. False when the person
        has no Home view (the click came from elsewhere)."""
        async with self._sessions() as session:
            noted = await home_rows.add_notice(session, user_id=user_id,
                                               notice=texts.home_refused(text))
            await session.commit()
        if noted:
            self.kick()
        return noted

    async def queue_message(self, user_id: str) -> tuple[str, list[dict[str, Any]]]:
        """The queue as `/handoff list` shows it: the same blocks as Home, cut to a message."""
        async with self._sessions() as session:
            sections, more = await self._sections(session, user_id)
        count = sum(len(entries) for kind, entries in sections if kind != "mine") + more
        return texts.queue_fallback(count), queue_blocks(
            sections=sections, more=more, command=self._config.slack.command,
            max_blocks=MESSAGE_MAX_BLOCKS)

    # drawing -------------------------------------------------------------------------------
    async def _sections(self, session: AsyncSession, user_id: str
                        ) -> tuple[list[tuple[str, list[QueueEntry]]], int]:
        queue = await home_rows.staff_queue(session, user_id=user_id)
        now = utcnow()
        support = self._config.channels.support

        def entry(case: home_rows.QueuedCase) -> QueueEntry:
            c = case.conversation
            oldest = case.pending[0] if case.pending else None
            status = texts.case_status(
                status=c.status, assignee=c.assignee, pending=len(case.pending),
                waiting=conversations.waiting_time(c, now),
                oldest_question=now - oldest.created_at if oldest else None)
            question = None
            if oldest is not None:
                question = QuestionPart(request_id=oldest.id, number=oldest.number,
                                        question=oldest.question,
                                        suggestion=oldest.suggested_answer, outcome=None)
            return QueueEntry(
                case_number=c.case_number or 0, customer_name=c.customer_name or "Customer",
                channel_id=c.channel_id, thread_ts=c.thread_ts, status=status,
                assignee=c.assignee,
                support_link=thread_link(support, c.support_thread_ts)
                if c.support_thread_ts else None,
                question=question, account=self._config.account_for(c.channel_id))

        sections = [("mine", [entry(c) for c in queue.mine]),
                    ("unclaimed", [entry(c) for c in queue.unclaimed]),
                    ("questions", [entry(c) for c in queue.questions])]
        return sections, queue.more

    async def view_for(self, user_id: str, *, staff: bool, notice: str | None = None
                       ) -> dict[str, Any]:
        """The Home view of this person now."""
        if not staff:
            return home_not_staff_view()
        async with self._sessions() as session:
            sections, more = await self._sections(session, user_id)
        stamp = utcnow().strftime("%H:%M:%S")
        return home_view(queue_blocks(
            sections=sections, more=more, command=self._config.slack.command,
            max_blocks=HOME_MAX_BLOCKS, notice=notice, footer=texts.home_updated(stamp)))

    # the refresher -------------------------------------------------------------------------
    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="home-refresher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        poll = min(self._every.total_seconds(), 1.0)
        loop = asyncio.get_running_loop()
        next_cleanup = loop.time()
        while True:
            try:
                await self.refresh_once()
                if loop.time() >= next_cleanup:
                    await self.forget_idle_viewers()
                    next_cleanup = loop.time() + CLEANUP_EVERY
            except Exception as error:  # the refresher never stops; case work never waits on it
                if is_unavailable(error):
                    log.warning("Home refresh: database unreachable (%s)", type(error).__name__)
                else:
                    log.exception("Home refresh failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)
            self._wake.clear()

    async def forget_idle_viewers(self) -> int:
        """People who have not opened Home within `home.viewers_for` are no longer kept."""
        async with self._sessions() as session:
            forgotten = await home_rows.forget_viewers(
                session, opened_before=utcnow() - self._config.home.viewers_for)
            await session.commit()
        return forgotten

    async def refresh_once(self) -> int:
        """Turn case changes into due views, then publish the views that are due; returns how
        many were published."""
        async with self._sessions() as session:
            await home_rows.consume_changes(
                session, viewers_since=utcnow() - self._config.home.viewers_for)
            due = await home_rows.due_viewers(session, every=self._every)
            await session.commit()
        published = 0
        for user_id, due_at in due:
            async with self._sessions() as session:
                claimed = await home_rows.claim(session, user_id=user_id, due_at=due_at,
                                                every=self._every)
                await session.commit()
            if claimed is not None and await self._publish(claimed):
                published += 1
        return published

    async def _publish(self, claimed: home_rows.Claimed) -> bool:
        try:
            view = await self.view_for(claimed.user_id, staff=claimed.staff,
                                       notice=claimed.notice)
            await self._slack.publish_home(user_id=claimed.user_id, view=view)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
            failure = failure_of(error)
            retry_at = None
            if not failure.permanent:
                wait = (timedelta(seconds=failure.retry_after) if failure.retry_after
                        else RETRY_WITHOUT_RETRY_AFTER)
                retry_at = utcnow() + wait
            log.warning("views.publish for %s failed (%s)%s", claimed.user_id, failure.code,
                        "; retried" if retry_at else "; waits for the next change")
            async with self._sessions() as session:
                await home_rows.publish_failed(session, user_id=claimed.user_id,
                                               error=failure.code, retry_at=retry_at,
                                               notice=claimed.notice)
                await session.commit()
            return False
        async with self._sessions() as session:
            await home_rows.published(session, user_id=claimed.user_id)
            await session.commit()
        return True
