"""`python -m bot run` is killed (SIGKILL) in the middle of its work and started again: every
customer message is still answered exactly once, within seconds of the restart."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlalchemy import select

from sandbox.model_server import Delay
from storage.db import create_engine, create_session_factory
from storage.models import Message, OutboxPost
from tests.conftest import CUSTOMER, CUSTOMERS, OTHER_CUSTOMERS, SUPPORT, bot_posts
from tests.faults.helpers import echo, wait_until

ROOT = Path(__file__).resolve().parents[2]



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """The real command in HTTP mode, on a fixed port so Slack's Request URL stays valid."""

    def __init__(self, tmp_path: Path, database_url: str, slack: Any, model: Any) -> None:
        self.port = free_port()
        self.config = tmp_path / "app.yaml"
        self.config.write_text(yaml.safe_dump({
            "slack": {"mode": "http", "bot_token": slack.bot_token,
                      "signing_secret": slack.signing_secret, "api_url": slack.api_url,
                      "http": {"host": "127.0.0.1", "port": self.port}},
            "channels": {"support": SUPPORT, "customer": [CUSTOMERS, OTHER_CUSTOMERS]},
            "llm": {"model": "openai/test-model", "api_base": model.base_url,
                    "api_key": "sk-test", "retries": 0},
            "database": {"url": database_url},
        }))
        self.process: asyncio.subprocess.Process | None = None
        slack.connect_http(f"http://127.0.0.1:{self.port}/slack/events")

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLM_"))}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(self.config), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the bot did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), timeout=30)


@pytest.fixture
async def bot_process(tmp_path, database_url, slack, model):
    process = BotProcess(tmp_path, database_url, slack, model)
    yield process
    await process.stop()


async def test_a_killed_bot_resumes_every_answer_within_seconds(bot_process, slack, model,
                                                                  database_url):
    model.default = lambda request: Delay(2.0, echo)  # slow model: the kill lands mid-answer
    await bot_process.start()
    roots = [await slack.user_posts(CUSTOMERS, CUSTOMER, f"question {n}") for n in range(10)]
    await model.wait_for_request(timeout=30)

    bot_process.kill()
    await bot_process.process.wait()
    model.default = echo
    loop = asyncio.get_running_loop()
    restarted = loop.time()
    await bot_process.start()
    for n, ts in enumerate(roots):
        wanted = f"answer to question {n}"
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                     predicate=lambda m, w=wanted: m["text"] == w)
    recovered_in = loop.time() - restarted
    print(f"killed mid-answer: 10 messages, all answered once, {recovered_in:.1f} s after restart")

    counts = [len(bot_posts(slack, CUSTOMERS, ts)) for ts in roots]
    assert counts == [1] * 10, counts
    # The killed process's leases lapse in seconds (15 s at most), not minutes.
    assert recovered_in < 45, recovered_in
    # No model call is left pending: a call the kill cut short was marked failed when its
    # turn was taken up again (the worker processes may also finish theirs as they stop).
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            statuses = (await session.execute(
                select(Message.status).where(Message.role == "assistant"))).scalars().all()
    finally:
        await engine.dispose()
    assert statuses.count("success") == 10, statuses
    assert "pending" not in statuses, statuses


async def test_a_bot_killed_after_slack_accepted_its_post_does_not_post_it_twice(
        bot_process, slack, model, database_url):
    model.default = echo
    # Slack stores the answer, then holds its reply: the bot dies before recording the send.
    slack.fail_next("chat.postMessage", error="internal_error", status=500, after_accept=True,
                    delay=60)
    await bot_process.start()
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "question once")
    await slack.wait_for_message(CUSTOMERS, thread_ts=root, timeout=30)
    bot_process.kill()
    await bot_process.process.wait()

    await bot_process.start()
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)

    async def answer_row() -> OutboxPost:
        async with sessions() as session:
            return (await session.execute(select(OutboxPost).where(
                OutboxPost.key.like("answer:%")))).scalar_one()
    try:
        row = await wait_until(answer_row, lambda row: row.status == "sent", timeout=60)
    finally:
        await engine.dispose()

    assert row.status == "sent"
    posts = bot_posts(slack, CUSTOMERS, root)
    assert [m["text"] for m in posts] == ["answer to question once"]
    assert row.slack_ts == posts[0]["ts"]


async def test_a_bot_killed_after_claiming_its_answer_posts_it_once_after_the_restart(
        bot_process, slack, model, database_url):
    model.default = echo
    # The answer's post is claimed with the answer (one commit); Slack holds the call and
    # never stores the post: the bot dies with the claim committed and nothing in Slack.
    slack.fail_next("chat.postMessage", error="internal_error", status=500, delay=60)
    await bot_process.start()
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "question claimed")
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)

    async def answer_row() -> OutboxPost | None:
        async with sessions() as session:
            return (await session.execute(select(OutboxPost).where(
                OutboxPost.key.like("answer:%")))).scalar_one_or_none()
    try:
        await wait_until(answer_row, lambda row: row is not None and row.attempts == 1,
                         timeout=30)
        bot_process.kill()
        await bot_process.process.wait()
        await bot_process.start()
        # The claim's hold passes, the retry looks in Slack, finds nothing, posts once.
        row = await wait_until(answer_row, lambda row: row.status == "sent", timeout=60)
    finally:
        await engine.dispose()

    posts = bot_posts(slack, CUSTOMERS, root)
    assert [m["text"] for m in posts] == ["answer to question claimed"]
    assert (row.attempts, row.slack_ts) == (2, posts[0]["ts"])
