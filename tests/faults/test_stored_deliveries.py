"""Issue 12: a Slack event is stored and acknowledged at once; a worker hands it to the listeners.

The ack waits for nothing the event means (bot/pipeline/deliveries.py). These prove it does not
lose or double anything for it: a process killed between the ack and the listeners, the same
event given to two replicas, listeners that fail on a delivery, a burst, on both databases.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.pipeline.deliveries import MAX_ATTEMPTS
from bot.process.doctor import diagnose
from sandbox.model_server import Reply
from storage.models import InboundEvent, Message, utcnow
from tests.conftest import CUSTOMER, CUSTOMERS, bot_posts
from tests.e2e.helpers import all_rows
from tests.faults.helpers import echo
from tests.faults.test_database_outage import Outage
from tests.faults.test_process_killed import BotProcess


def delivery_of(slack: Any, ts: str) -> Any:
    return next(d for d in slack.deliveries if d.payload.get("event", {}).get("ts") == ts)


async def test_the_ack_does_not_wait_for_the_listeners(bot, slack, model):
    model.default = echo
    # The listeners look the customer's name up first; Slack holds that answer for a while.
    slack.fail_next("users.info", error="internal_error", status=500, delay=2)
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "question while Slack is slow")

    # Acknowledged while the listeners still wait on Slack: the event is stored, not yet read.
    assert delivery_of(slack, ts).status == 200
    assert not slack.calls_to("users.info")
    assert [row.event_id for row in await all_rows(bot, InboundEvent)] == [
        delivery_of(slack, ts).event_id]
    assert [m for m in await all_rows(bot, Message) if m.slack_ts == ts] == []

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
    await bot.services.idle()
    # Recorded and forgotten in one transaction: nothing stored is left behind.
    assert await all_rows(bot, InboundEvent) == []
    assert [m.text for m in await all_rows(bot, Message) if m.slack_ts == ts] == [
        "question while Slack is slow"]


async def test_a_process_killed_after_the_ack_answers_the_stored_event_when_back(
        tmp_path, database_url, slack, model):
    model.default = echo
    process = BotProcess(tmp_path, database_url, slack, model)
    try:
        await process.start()
        slack.fail_next("users.info", error="internal_error", status=500, delay=60)
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "asked just before the crash")
        assert delivery_of(slack, ts).status == 200
        process.kill()  # acknowledged, stored, never read by a listener
        await process.process.wait()
        slack.clear_faults()

        await process.start()
        # The dead process's claim lapses (15 s) and the stored event is answered, once.
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                     predicate=lambda m: m["text"].startswith("answer to"))
        await slack.settle()
        assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == [
            "answer to asked just before the crash"]
    finally:
        await process.stop()


async def test_the_same_event_given_to_two_replicas_is_answered_once(start, slack, model):
    model.script(Reply("only once"), Reply("a second answer must never be posted"))
    first = await start()
    second = await start()  # the emulator now sends to the second
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello both?")
    event_id = delivery_of(slack, ts).event_id
    # Slack's retry of the same event reaches the other replica.
    slack.connect_http(f"http://127.0.0.1:{first.http_port}/slack/events")
    retry = await slack.redeliver(event_id)
    assert retry.status == 200

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30)
    for replica in (first, second):
        await replica.services.idle()
    await slack.settle()
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == ["only once"]
    assert len(model.requests) == 1
    assert await all_rows(first, InboundEvent) == []


async def store(bot: Any, event_id: str, body: str, *, attempts: int = 0) -> None:
    """A delivery as the front stores it, with `attempts` tries already behind it."""
    async with bot.services.sessions() as session:
        session.add(InboundEvent(event_id=event_id, body=body, attempts=attempts,
                                 received_at=utcnow()))
        await session.commit()


async def test_a_delivery_the_listeners_fail_on_is_kept_and_tried_again(bot, slack, model):
    await store(bot, "EvBROKEN1", "{not json")
    bot.services.deliveries.wake()
    await bot.services.idle()

    [row] = await all_rows(bot, InboundEvent)
    assert row.attempts == 1 and row.failed_at is None
    assert row.claimed_until is not None  # tried again once this hold lapses


async def test_a_delivery_that_fails_its_last_attempt_is_kept_as_failed(bot, slack, model,
                                                                        caplog):
    await store(bot, "EvBROKEN2", json.dumps(["not", "an", "object"]),
                attempts=MAX_ATTEMPTS - 1)
    bot.services.deliveries.wake()
    await bot.services.idle()

    [row] = await all_rows(bot, InboundEvent)
    assert row.attempts == MAX_ATTEMPTS
    assert row.failed_at is not None and "not a JSON object" in (row.error or "")
    assert "gave up on stored Slack delivery" in caplog.text
    # Never taken again; `doctor` tells the operator.
    bot.services.deliveries.wake()
    await bot.services.idle()
    [again] = await all_rows(bot, InboundEvent)
    assert again.attempts == MAX_ATTEMPTS
    [finding] = [f for f in await diagnose(bot.services.config)
                 if f.check == "slack.deliveries"]
    assert finding.status == "warn" and "1 stored Slack event" in finding.summary


@pytest.fixture
async def outage(database_url):
    outage = Outage(database_url)
    yield outage
    await outage.stop()


async def test_an_event_the_front_cannot_store_is_refused_and_its_retry_answered(
        start, slack, model, outage):
    model.default = echo
    bot = await start(database={"url": await outage.start()})
    warm = await slack.user_posts(CUSTOMERS, CUSTOMER, "warm-up")
    await slack.wait_for_message(CUSTOMERS, thread_ts=warm, timeout=30)
    await bot.services.idle()

    await outage.begin()
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "asked during the outage")
    refused = delivery_of(slack, ts)
    assert refused.status != 200  # not stored, so not acknowledged: Slack sends it again
    outage.end()

    retry = await slack.redeliver(refused.event_id)
    assert retry.status == 200
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                 predicate=lambda m: m["text"].startswith("answer to"))
    await bot.services.idle()
    await slack.settle()
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == [
        "answer to asked during the outage"]


async def test_a_burst_is_stored_in_a_few_transactions_and_each_message_answered_once(
        bot, slack, model):
    model.default = echo
    stores: list[int] = []

    def note(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any,
             many: bool) -> None:
        if statement.startswith("INSERT INTO inbound_events"):
            stores.append(len(params) if many else 1)

    def refused(context: Any) -> None:
        # A store refused SQLite's write lock (its BEGIN IMMEDIATE goes with the INSERT) stored
        # nothing; the front asks again, and that store is the one counted.
        if (context.statement or "").startswith("INSERT INTO inbound_events"):
            stores.pop()

    # Every engine: on SQLite the front stores with a connection of its own (a burst writer).
    event.listen(Engine, "before_cursor_execute", note)
    event.listen(Engine, "handle_error", refused)
    try:
        roots = await asyncio.gather(*(slack.user_posts(CUSTOMERS, CUSTOMER, f"burst {n}")
                                       for n in range(30)))
    finally:
        event.remove(Engine, "before_cursor_execute", note)
        event.remove(Engine, "handle_error", refused)
    assert all(delivery_of(slack, ts).status == 200 for ts in roots)
    # Stores that arrive while one commits go together in the next transaction.
    assert sum(stores) == 30 and len(stores) <= 10, stores

    for n, ts in enumerate(roots):
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                     predicate=lambda m, n=n: m["text"] == f"answer to burst {n}")
    await bot.services.idle()
    await slack.settle()
    assert [len(bot_posts(slack, CUSTOMERS, ts)) for ts in roots] == [1] * 30
    assert await all_rows(bot, InboundEvent) == []


class WriteLockHeld:
    """Another writer holds the lock the front's store needs: SQLite's write lock (BEGIN
    IMMEDIATE on the file from another connection) or, on PostgreSQL, an exclusive lock on the
    deliveries' table."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._release: Any = None

    async def __aenter__(self) -> WriteLockHeld:
        if self._url.startswith("sqlite"):
            import sqlite3
            # Asked in another thread: a bot transaction holding the lock needs this loop.
            connection = sqlite3.connect(self._url.split("///", 1)[1], isolation_level=None,
                                         check_same_thread=False)
            await asyncio.to_thread(connection.execute, "BEGIN IMMEDIATE")

            async def release_sqlite() -> None:
                connection.execute("COMMIT")
                connection.close()
            self._release = release_sqlite
        else:
            import asyncpg
            connection = await asyncpg.connect(self._url.replace("+asyncpg", ""))
            transaction = connection.transaction()
            await transaction.start()
            await connection.execute("LOCK TABLE inbound_events IN EXCLUSIVE MODE")

            async def release_postgresql() -> None:
                await transaction.commit()
                await connection.close()
            self._release = release_postgresql
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._release()


async def test_the_store_waits_for_a_writer_that_holds_the_lock_then_acks(bot, slack, model):
    """On SQLite the front's store never sleeps in SQLite's busy handler (whose waits grow to
    100 ms while a busy worker takes the lock again and again): it asks for the lock again and
    again instead, so it gets in between the other writer's transactions; here the lock is held
    for a while, and the event waits for it, is acked and answered, not refused."""
    model.default = echo
    url = bot.services.engine.url.render_as_string(hide_password=False)
    async with WriteLockHeld(url):
        posting = asyncio.create_task(slack.user_posts(CUSTOMERS, CUSTOMER, "while locked"))
        await asyncio.sleep(0.5)
        assert not posting.done()  # the ack waits for the store, which waits for the lock
    ts = await posting
    assert delivery_of(slack, ts).status == 200
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=30,
                                 predicate=lambda m: m["text"] == "answer to while locked")
