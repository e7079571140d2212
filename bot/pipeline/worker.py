"""Claims conversations with open work and runs their items in order, one worker at a time.

The lease lives on the conversation row (a conditional UPDATE that exactly one claimer wins, on
SQLite and PostgreSQL alike), so one conversation is worked in order while different ones run in
parallel, across tasks and replicas. Leases are short and renewed by a heartbeat while the work
runs, so a crashed process's conversations are free again within seconds; a periodic sweep picks
them up, and sends every due outbox post: after a crash or restart, recovery is the normal path.
A database that cannot be reached is waited out: the sweep backs off and logs once, and work
that failed for it does not count as an attempt.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.pipeline.outbox import Outbox
from bot.toolkit import log_context
from storage import conversations, work_items
from storage.db import is_unavailable
from storage.models import WorkItem, utcnow

log = logging.getLogger(__name__)

Handler = Callable[[WorkItem], Awaitable[None]]

# A lease outlives a few missed heartbeats (a busy loop) but not a crash by much.
LEASE = timedelta(seconds=15)
HEARTBEAT_SECONDS = 3.0
MAX_ATTEMPTS = 3
OUTAGE_RETRY_SECONDS = 2.0
MIN_SWEEP_SECONDS = 0.1
MAX_SWEEP_BACKOFF_SECONDS = 30.0


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
        self._waiting = 0  # drains waiting for a slot
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._forward: Callable[[int], None] | None = None
        self.database_reachable = True

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def forward_kicks(self, wake: Callable[[int], None]) -> None:
        """Run no work in this process: `kick` wakes another process's worker instead (the
        Slack front of `python -m bot run` with worker processes)."""
        self._forward = wake

    def kick(self, conversation_id: int) -> None:
        """Start draining a conversation's work now (no-op if this process already is)."""
        if self._stopping:
            return
        if self._forward is not None:
            self._forward(conversation_id)
            return
        task = self._running.get(conversation_id)
        if task is not None and not task.done():
            task.kicked = True  # type: ignore[attr-defined]
            return
        task = asyncio.create_task(self._drain(conversation_id), name=f"drain-{conversation_id}")
        task.kicked = False  # type: ignore[attr-defined]
        self._running[conversation_id] = task

    def start(self) -> None:
        if self._forward is not None:
            return  # the worker processes sweep
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

    @property
    def waiting(self) -> int:
        """Conversations waiting for a slot: this process has more work than `concurrency`
        lets it run at once (a burst)."""
        return self._waiting

    def queueing(self) -> bool:
        return self._waiting > 0

    async def idle(self) -> None:
        """Wait until no conversation is being drained in this process (for tests, shutdown)."""
        while tasks := [t for t in self._running.values() if not t.done()]:
            await asyncio.wait(tasks)

    async def sweep(self) -> float | None:
        """Start work no live lease covers, and send every due post; returns the seconds until
        the next post retry is due, if any."""
        async with self._sessions() as session:
            due = await conversations.conversations_with_open_work(session)
        for conversation_id in due:
            self.kick(conversation_id)
        return await self._outbox.send_due()

    async def _sweep_forever(self) -> None:
        pause = self._sweep_seconds
        while True:
            try:
                next_retry = await self.sweep()
                self._database_answered()
                # Wake for the next post retry (Retry-After, back-off) if it comes sooner.
                pause = min(self._sweep_seconds, max(MIN_SWEEP_SECONDS, next_retry or 1e9))
            except Exception as error:
                if not is_unavailable(error):
                    log.exception("work sweep failed")
                elif self.database_reachable:
                    log.warning("database unreachable (%s); retrying with back-off",
                                type(error).__name__)
                    self.database_reachable = False
                pause = min(MAX_SWEEP_BACKOFF_SECONDS, max(pause * 2, OUTAGE_RETRY_SECONDS))
            await asyncio.sleep(pause)

    def _database_answered(self) -> None:
        """Any transaction that commits proves the database is back (the sweep may be backing
        off for a while): health says so at once."""
        if not self.database_reachable:
            log.warning("database reachable again; resuming work")
        self.database_reachable = True

    async def _claim(self, conversation_id: int) -> bool:
        """Renew the lease (the heartbeat)."""
        async with self._sessions() as session:
            claimed = await conversations.claim_conversation(
                session, conversation_id=conversation_id, owner=self._owner, lease=LEASE)
            await session.commit()
        self._database_answered()
        return claimed

    async def _claim_and_take(self, conversation_id: int) -> tuple[bool, WorkItem | None]:
        """One transaction: take the lease, and the first due item (its attempt counted); with
        nothing due, the lease is given back in the same transaction."""
        async with self._sessions() as session:
            claimed = await conversations.claim_conversation(
                session, conversation_id=conversation_id, owner=self._owner, lease=LEASE)
            item = await self._take_or_release(session, conversation_id) if claimed else None
            await session.commit()
        self._database_answered()
        return claimed, item

    async def _finish_and_take(self, conversation_id: int, done: WorkItem,
                               outcome: dict[str, object]) -> WorkItem | None:
        """Send the item's posts (a post that must wait is left to the sweep), then one
        transaction: the last post's result, the item's outcome, and the next due item, or the
        lease given back when there is none (work added after this commit kicks a new drain)."""
        async with self._sessions() as session:
            await self._outbox.send_pending_in(session, conversation_id)
            await work_items.set_outcome(session, done.id, outcome)
            item = await self._release_or_take(session, conversation_id)
            await session.commit()
        return item

    async def _take_or_release(self, session: AsyncSession, conversation_id: int
                               ) -> WorkItem | None:
        item = await work_items.take_next(session, conversation_id)
        if item is None:
            await conversations.release_conversation(
                session, conversation_id=conversation_id, owner=self._owner)
        return item

    async def _release_or_take(self, session: AsyncSession, conversation_id: int
                               ) -> WorkItem | None:
        """`_take_or_release` in the order that costs one statement when, as usual after an
        item, nothing more is due."""
        if await conversations.release_if_idle(session, conversation_id=conversation_id,
                                               owner=self._owner):
            return None
        return await work_items.take_next(session, conversation_id)

    async def _drain(self, conversation_id: int) -> None:
        log_context.conversation_id.set(conversation_id)  # this task's log lines name the case
        log.debug("working on conversation %s", conversation_id)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            await self._drain_claimed(conversation_id)
        except Exception as error:
            if is_unavailable(error):
                log.warning("conversation %s paused: database unreachable (%s)",
                            conversation_id, type(error).__name__)
            else:
                log.exception("draining conversation %s failed", conversation_id)
        finally:
            self._slots.release()

    async def _drain_claimed(self, conversation_id: int) -> None:
        task = self._running.get(conversation_id)
        while True:
            if task is not None:
                task.kicked = False  # type: ignore[attr-defined]
            claimed, item = await self._claim_and_take(conversation_id)
            if not claimed:
                return  # another worker holds it; it re-checks after releasing
            if item is not None:
                heartbeat = asyncio.create_task(self._renew(conversation_id))
                try:
                    await self._run_items(conversation_id, item)
                except BaseException:
                    await self._release_quietly(conversation_id)
                    raise
                finally:
                    heartbeat.cancel()
            # The lease is given back; look again only for a kick that came meanwhile.
            if not getattr(task, "kicked", False):
                return

    async def _release_quietly(self, conversation_id: int) -> None:
        """Give the lease back after a failure; if the database is away, the short lease lapses
        on its own."""
        try:
            async with self._sessions() as session:
                await conversations.release_conversation(
                    session, conversation_id=conversation_id, owner=self._owner)
                await session.commit()
        except Exception as error:  # noqa: BLE001
            log.warning("could not release conversation %s (%s); its lease will lapse",
                        conversation_id, type(error).__name__)

    async def _renew(self, conversation_id: int) -> None:
        """Heartbeat: keep the lease while the work runs."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if not await self._claim(conversation_id):
                    log.warning("lost the lease of conversation %s", conversation_id)
            except Exception as error:  # noqa: BLE001 - the next beat tries again
                log.warning("could not renew the lease of conversation %s (%s)",
                            conversation_id, type(error).__name__)

    async def _run_items(self, conversation_id: int, item: WorkItem | None) -> None:
        """Run items in order until none is due; the last transaction gives the lease back.
        An item's outcome is recorded with the next item's claim, after its posts were sent:
        a crash in between runs it again, which every handler allows (a step re-reads the
        history; a flush sends what is still pending)."""
        while item is not None:
            outcome = await self._run_one(item)
            item = await self._finish_and_take(conversation_id, item, outcome)

    async def _run_one(self, item: WorkItem) -> dict[str, object]:
        """Run one item; returns its outcome (status, error, attempts, and when to retry)."""
        handler = self._handlers.get(item.kind)
        status, error, attempts, delay = "done", None, item.attempts, 0.0
        try:
            if handler is not None:
                await handler(item)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            if is_unavailable(exc):
                # Not the item's fault: it does not use up an attempt.
                log.warning("work item %s (%s) waits for the database: %s", item.id, item.kind,
                            type(exc).__name__)
                status, attempts, delay = "open", item.attempts - 1, OUTAGE_RETRY_SECONDS
            else:
                log.exception("work item %s (%s) failed", item.id, item.kind)
                status = "failed" if item.attempts >= MAX_ATTEMPTS else "open"
                delay = 5.0 * item.attempts
        outcome: dict[str, object] = {"status": status, "error": error, "attempts": attempts}
        if status == "open":
            outcome["not_before"] = utcnow() + timedelta(seconds=delay)
        return outcome
