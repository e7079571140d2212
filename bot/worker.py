"""Claims conversations with open work and runs their items in order, one worker at a time.

The lease lives on the conversation row (a conditional UPDATE that exactly one claimer wins, on
SQLite and PostgreSQL alike), so one conversation is worked in order while different ones run in
parallel, across tasks and replicas. A periodic sweep picks up work whose lease expired: after a
crash or restart, recovery is the normal path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.outbox import Outbox
from storage import conversations, work
from storage.models import WorkItem, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[WorkItem], Awaitable[None]]

LEASE = timedelta(seconds=90)
MAX_ATTEMPTS = 3


class Worker:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], outbox: Outbox,
                 *, sweep_seconds: float = 5.0, concurrency: int = 8) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._handlers: dict[str, Handler] = {}
        self._owner = f"worker-{uuid.uuid4().hex[:12]}"
        self._running: dict[int, asyncio.Task[None]] = {}
        self._sweep_seconds = sweep_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def kick(self, conversation_id: int) -> None:
        """Start draining a conversation's work now (no-op if this process already is)."""
        if self._stopping:
            return
        task = self._running.get(conversation_id)
        if task is not None and not task.done():
            task.kicked = True  # type: ignore[attr-defined]
            return
        task = asyncio.create_task(self._drain(conversation_id), name=f"drain-{conversation_id}")
        task.kicked = False  # type: ignore[attr-defined]
        self._running[conversation_id] = task

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="work-sweep")

    async def stop(self) -> None:
        self._stopping = True
        if self._sweeper:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        tasks = [t for t in self._running.values() if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop_now(self) -> None:
        """Stop at once, mid-item, as a crash would (tests use it to prove recovery)."""
        self._stopping = True
        tasks = [t for t in self._running.values() if not t.done()]
        if self._sweeper:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until no conversation is being drained in this process (for tests, shutdown)."""
        while tasks := [t for t in self._running.values() if not t.done()]:
            await asyncio.wait(tasks)

    async def sweep(self) -> None:
        async with self._sessions() as session:
            due = await conversations.conversations_with_open_work(session)
        for conversation_id in due:
            self.kick(conversation_id)
        await self._outbox.send_pending(None)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("work sweep failed")
            await asyncio.sleep(self._sweep_seconds)

    async def _claim(self, conversation_id: int) -> bool:
        async with self._sessions() as session:
            claimed = await conversations.claim_conversation(
                session, conversation_id=conversation_id, owner=self._owner, lease=LEASE)
            await session.commit()
            return claimed

    async def _release(self, conversation_id: int) -> None:
        async with self._sessions() as session:
            await conversations.release_conversation(
                session, conversation_id=conversation_id, owner=self._owner)
            await session.commit()

    async def _drain(self, conversation_id: int) -> None:
        async with self._slots:
            await self._drain_claimed(conversation_id)

    async def _drain_claimed(self, conversation_id: int) -> None:
        while True:
            if not await self._claim(conversation_id):
                return  # another worker holds it; it re-checks after releasing
            heartbeat = asyncio.create_task(self._renew(conversation_id))
            try:
                await self._run_items(conversation_id)
            finally:
                heartbeat.cancel()
                await self._release(conversation_id)
            async with self._sessions() as session:
                if await work.next_open_work(session, conversation_id) is None:
                    return

    async def _renew(self, conversation_id: int) -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            await self._claim(conversation_id)

    async def _run_items(self, conversation_id: int) -> None:
        while True:
            async with self._sessions() as session:
                item = await work.next_open_work(session, conversation_id)
                if item is None:
                    break
                item.attempts += 1
                await session.commit()
            await self._run_one(item)
            if not await self._outbox.send_pending(conversation_id):
                break  # a post must wait for Slack; the sweep retries it

    async def _run_one(self, item: WorkItem) -> None:
        handler = self._handlers.get(item.kind)
        status, error = "done", None
        try:
            if handler is not None:
                await handler(item)
        except Exception as exc:
            log.exception("work item %s (%s) failed", item.id, item.kind)
            error = f"{type(exc).__name__}: {exc}"[:500]
            status = "failed" if item.attempts >= MAX_ATTEMPTS else "open"
        async with self._sessions() as session:
            row = await session.get(WorkItem, item.id)
            if row is not None:
                row.status = status
                row.error = error
                if status == "open":
                    row.not_before = utcnow() + timedelta(seconds=5 * item.attempts)
                await session.commit()
