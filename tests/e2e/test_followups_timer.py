"""Issue 10: follow-ups fire at their due time (a timer armed from the database), not at the
next periodic check; replicas still post each once; a database outage does not stop them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from bot.process.lifecycle import start_bot
from tests.conftest import CUSTOMERS, SUPPORT, make_config
from tests.e2e.followup_helpers import (
    ask,
    honest,
    the_request,
    thread_posts_with,
    timers,
    wait_until,
)
from tests.tcp_proxy import TcpProxy

HONEST = "Sorry, the team has not answered yet; they will follow up here."
# The periodic check is far away: only the timer can fire what the tests wait for.
NO_CHECK = "60s"
# Generous: the machine may be slow; the point is that it comes long before the next check.
WAIT = 10.0


async def test_a_reminder_fires_on_its_timer_long_before_the_next_check(start, slack, model):
    bot = await start(timers=timers(remind_after="2s", max_reminders=1, check_every=NO_CHECK))
    _, post = await ask(slack, model)

    reminder = await slack.wait_for_message(
        SUPPORT, thread_ts=post["ts"], predicate=lambda m: "Reminder 1/1" in m["text"],
        timeout=WAIT)
    assert reminder
    request = await the_request(bot)
    assert (request.reminders_sent, request.remind_at) == (1, None)


async def test_a_give_up_fires_on_its_timer_long_before_the_next_check(start, slack, model):
    bot = await start(timers=timers(give_up_after="2s", check_every=NO_CHECK))
    ts, post = await ask(slack, model, honest(HONEST))

    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Nobody answered" in m["text"], timeout=WAIT)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == HONEST,
                                 timeout=WAIT)
    assert (await the_request(bot)).status == "expired"


async def test_the_timer_is_armed_for_the_nearest_due_time(start, slack, model):
    bot = await start(timers=timers(remind_after="30s", escalate_after="40s",
                                    check_every=NO_CHECK))
    await ask(slack, model)
    request = await the_request(bot)

    # The commit that wrote the question woke the timer, which re-read the due times.
    async def armed() -> None:
        while bot.scheduler.armed_for != request.remind_at:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(armed(), WAIT)


async def test_two_replicas_with_short_timers_post_each_reminder_once(start, slack, model):
    both = timers(remind_after="1s", max_reminders=3, check_every=0.5)
    first = await start(timers=both)
    second = await start(timers=both)
    _, post = await ask(slack, model)

    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder 3/3" in m["text"], timeout=WAIT)
    assert await first.followups.run_due() == 0
    assert await second.followups.run_due() == 0
    await first.services.idle()
    await second.services.idle()

    sent = [re.search(r"Reminder \d/\d", m["text"]).group()
            for m in thread_posts_with(slack, post["ts"], ":bell: Reminder")]
    assert sent == ["Reminder 1/3", "Reminder 2/3", "Reminder 3/3"]
    request = await the_request(first)
    assert (request.reminders_sent, request.remind_at) == (3, None)


@contextlib.asynccontextmanager
async def writes_blocked(database_url: str) -> AsyncIterator[None]:
    """Another transaction holds the lock the reminder's claim needs: the human request rows on
    PostgreSQL (as a replica or a staff answer would), the write lock on SQLite."""
    if database_url.startswith("sqlite"):
        # Waits for the bot's own short write transactions (its checks run every 0.2 s), in
        # another thread: sqlite3's busy handler sleeps in the thread that asks, and a bot
        # transaction holding the lock needs this event loop to finish (waiting on the loop
        # deadlocked the two for the whole 30 s timeout, in one CI run in four).
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"),
                                     isolation_level=None, timeout=30, check_same_thread=False)
        await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT id FROM human_requests FOR UPDATE")
            yield
    finally:
        await connection.close()


async def test_a_slow_check_delays_the_next_without_skipping_it(start, slack, model, caplog,
                                                                 database_url):
    # Regression (seen on PostgreSQL): a check still running when the next one was due was
    # skipped by APScheduler ("maximum number of running instances reached", a warning for
    # each job), and its reminders waited for a later check.
    caplog.set_level(logging.INFO)
    bot = await start(timers=timers(remind_after="1s", max_reminders=3, check_every=0.2))
    _, post = await ask(slack, model)
    await bot.services.idle()
    request = await the_request(bot)

    async with writes_blocked(database_url):  # the reminder's claim waits, checks come due
        await wait_until(request.remind_at + timedelta(seconds=1))
    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder 3/3" in m["text"], timeout=WAIT)
    await bot.services.idle()

    assert len(thread_posts_with(slack, post["ts"], ":bell: Reminder")) == 3
    noisy = [record.getMessage() for record in caplog.records
             if record.name.startswith(("apscheduler", "bot.process.scheduler"))
             and record.levelno >= logging.WARNING]
    assert noisy == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_database_outage_is_one_warning_and_the_next_check_retries(
        database_url: str, slack: Any, model: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    host_port = re.search(r"@([^:/]+):(\d+)/", database_url)
    assert host_port
    proxy = TcpProxy(host_port.group(1), int(host_port.group(2)))
    await proxy.start()
    through_proxy = database_url.replace(host_port.group(0), f"@127.0.0.1:{proxy.port}/")
    config = make_config(database_url=through_proxy, emulator=slack, model=model,
                         timers=timers(remind_after="2s", max_reminders=1, check_every=0.5))
    bot = await start_bot(config, http_port=0, sweep_seconds=0.5)
    slack.connect_http(f"http://127.0.0.1:{bot.http_port}{config.slack.http.path}")
    try:
        _, post = await ask(slack, model)
        await bot.services.idle()
        request = await the_request(bot)

        proxy.cut()
        await asyncio.sleep(max(0.0, (request.remind_at - request.created_at).total_seconds())
                            + 1.5)  # the reminder is due and several checks failed
        warnings = [record for record in caplog.records if record.name == "bot.process.scheduler"
                    and "database unreachable" in record.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
        assert warnings[0].exc_info is None  # a line, not a traceback
        assert not bot.scheduler.database_reachable

        proxy.restore()
        await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                     predicate=lambda m: "Reminder 1/1" in m["text"], timeout=WAIT)
        assert bot.scheduler.database_reachable
        assert len(thread_posts_with(slack, post["ts"], ":bell: Reminder")) == 1
    finally:
        proxy.restore()
        await bot.stop()
        await proxy.stop()
