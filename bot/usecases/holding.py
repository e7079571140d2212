"""The ⏳ reaction on a customer's message, only when its answer is slow.

A quick answer needs no sign that the bot is on it; a slow one does. So the reaction is not put
at intake: `slack.holding_reaction_after` later, if the message has no answer yet, it is queued
and sent through the outbox (exactly once), and the answer then queues its removal. Whether
the answer or the reaction came first is decided in the database, by one unique key that
either side inserts first (see `PostQueue.put_holding_reaction`/`clear_holding_reaction`), so
a reaction never stays on an answered message.

With worker processes, the front only acks: `forward_to` hands each timer to the worker
process of the conversation (`process/workers.py`), which puts the reaction, so that in a
burst the ⏳ (an INSERT, a claim, a Slack call and its result per slow message) never takes the
front's core from the acks. A timer lost with a worker process is a missing ⏳, nothing more.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pipeline.outbox import Outbox
from bot.toolkit.posts import PostQueue
from storage.db import is_unavailable

log = logging.getLogger(__name__)

CONCURRENCY = 2  # reactions queued and sent at once


class HoldingReaction:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], posts: PostQueue,
                 outbox: Outbox, *, after: timedelta) -> None:
        self._sessions = sessions
        self._posts = posts
        self._outbox = outbox
        self._after = after.total_seconds()
        self._pending: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._forward: Callable[[int, str, str], None] | None = None

    def forward_to(self, schedule: Callable[[int, str, str], None]) -> None:
        """Keep no timers in this process: `schedule` hands them to another (the Slack front
        of `python -m bot run` with worker processes)."""
        self._forward = schedule

    def schedule(self, *, conversation_id: int, channel: str, ts: str) -> None:
        """Put the ⏳ on this message if it is still unanswered `after` from now."""
        if self._forward is not None:
            self._forward(conversation_id, channel, ts)
            return
        task = asyncio.create_task(self._put_later(conversation_id, channel, ts))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put_later(self, conversation_id: int, channel: str, ts: str) -> None:
        if self._after > 0:
            await asyncio.sleep(self._after)
        try:
            # A few at a time: in a burst every answer is slow, and these must not crowd out
            # the acks or the answers (a late ⏳ whose answer came meanwhile costs one INSERT
            # and is skipped).
            async with self._slots:
                async with self._sessions() as session:
                    post_id = await self._posts.put_holding_reaction(
                        session, conversation_id=conversation_id, channel=channel,
                        customer_ts=ts)
                    if post_id is None:
                        return  # its answer came first
                    # Queued and claimed in one transaction, then sent.
                    await self._outbox.send_queued(session, post_id)
        except Exception as error:
            if is_unavailable(error):
                log.warning("no ⏳ on %s: database unreachable (%s)", ts, type(error).__name__)
            else:
                log.exception("could not put the ⏳ on %s", ts)

    async def stop(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
