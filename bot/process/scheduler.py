"""When follow-ups run: the APScheduler lifecycle and the timer of one bot process.

The rules themselves (what is due, what it posts) are the use case `bot.usecases.followups`. A
timer runs every follow-up job once at start-up, then at the nearest due time read from the
database, and at the latest every `timers.check_every` (the safety net for due times written by
other replicas); APScheduler runs housekeeping. An unreachable database is one warning, and the
next check retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import TimerSettings
from bot.usecases.followups import FollowUps
from storage import followups
from storage.db import is_unavailable
from storage.models import utcnow

log = logging.getLogger(__name__)

OUTAGE_RETRY = 5.0  # seconds between checks while the database cannot be reached


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

    def __init__(self, rules: FollowUps, engine: AsyncEngine, timers: TimerSettings) -> None:
        self.rules = rules
        self._engine = engine
        self._timers = timers
        self._scheduler: AsyncIOScheduler | None = None
        self._timer: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        self._unwatch: Callable[[], None] | None = None
        self._stopping = False
        self._pass_started: datetime | None = None
        self.armed_for: datetime | None = None  # the due time the timer sleeps until
        self.database_reachable = True

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Run a pass now (follow-ups due during downtime fire once), then on the timer."""
        quiet = logging.getLogger("apscheduler.executors.default")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)  # "Running job ..." every hour otherwise
        self._stopping = self.rules.stopping = False
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(self._housekeeping_job,
                          IntervalTrigger(seconds=self._timers.housekeeping_every.total_seconds()),
                          id="housekeeping", name="housekeeping", next_run_time=datetime.now(UTC),
                          max_instances=1, coalesce=True, misfire_grace_time=None)
        scheduler.start()
        self._scheduler = scheduler
        self._unwatch = followups.watch_due_times(self._engine, self.wake)
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
        self._stopping = self.rules.stopping = True
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
        for job_id, job in self.rules.jobs.items():
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
            pruned = await self.rules.housekeeping()
        except Exception as error:
            if is_unavailable(error):
                log.warning("housekeeping: database unreachable (%s); retried in %s",
                            type(error).__name__, self._timers.housekeeping_every)
            else:
                log.exception("housekeeping failed")
            return
        if pruned:
            log.info("housekeeping: %d row(s) pruned", pruned)

    async def _nearest_due(self) -> datetime | None:
        try:
            return await self.rules.next_due_at(self._pass_started)
        except Exception as error:
            if not is_unavailable(error):
                log.exception("reading the next follow-up due time failed")
            else:
                self._unreachable("followups.timer", error)
            return None
