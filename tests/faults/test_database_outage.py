"""The database goes away while the bot works (PostgreSQL restarting behind a cut connection;
SQLite locked by another process past its busy timeout) and comes back: nothing is lost, nothing
is doubled, `/healthz` says so meanwhile, and no task dies with an unhandled exception."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from sandbox.model_server import Delay, last_user_text
from tests.conftest import CUSTOMER, CUSTOMERS, bot_posts
from tests.faults.helpers import echo
from tests.tcp_proxy import TcpProxy


class Outage:
    """Takes the test database away and brings it back."""

    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        self.proxy: TcpProxy | None = None
        self._lock: sqlite3.Connection | None = None

    async def start(self) -> str:
        if self.url.get_backend_name() == "sqlite":
            return self.url.render_as_string(hide_password=False)
        self.proxy = TcpProxy(self.url.host or "127.0.0.1", self.url.port or 5432)
        await self.proxy.start()
        proxied = self.url.set(host="127.0.0.1", port=self.proxy.port)
        return proxied.render_as_string(hide_password=False)

    async def begin(self) -> None:
        if self.proxy is not None:
            self.proxy.cut()
            return
        self._lock = sqlite3.connect(self.url.database, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        await asyncio.to_thread(self._lock.execute, "BEGIN EXCLUSIVE")

    def end(self) -> None:
        if self.proxy is not None:
            self.proxy.restore()
        elif self._lock is not None:
            self._lock.execute("ROLLBACK")
            self._lock.close()

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()


@pytest.fixture
async def outage(database_url):
    outage = Outage(database_url)
    yield outage
    await outage.stop()


async def healthz(bot: Any) -> int:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{bot.http_port}/healthz") as response:
        return response.status


async def test_answers_started_before_an_outage_are_sent_once_after_it(
        start, slack, model, outage, caplog):
    caplog.set_level(logging.WARNING)
    url = await outage.start()
    bot = await start(database={"url": url})
    model.default = echo
    warm = await slack.user_posts(CUSTOMERS, CUSTOMER, "question warm")
    await slack.wait_for_message(CUSTOMERS, thread_ts=warm, timeout=30)

    model.default = lambda request: Delay(1.0, echo)  # the outage begins mid-answer
    roots = [await slack.user_posts(CUSTOMERS, CUSTOMER, f"question {n}") for n in range(3)]
    await model.wait_for_request(lambda r: "question 0" in last_user_text(r), timeout=30)
    await outage.begin()
    if outage.proxy is not None:
        assert await healthz(bot) == 503
    await asyncio.sleep(12)  # past SQLite's busy timeout; a long restart for PostgreSQL
    outage.end()

    for n, ts in enumerate(roots):
        wanted = f"answer to question {n}"
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                     predicate=lambda m, w=wanted: m["text"] == w)
    await bot.services.idle()

    assert [len(bot_posts(slack, CUSTOMERS, ts)) for ts in roots] == [1, 1, 1]
    assert await healthz(bot) == 200
    unhandled = [r for r in caplog.records
                 if "never retrieved" in r.getMessage() or r.levelno >= logging.ERROR]
    assert not unhandled, [r.getMessage() for r in unhandled]
