"""`python -m bot run` with worker processes (`workers.processes`): the front records and acks,
worker processes answer, woken through their pipe; a killed worker process is started again
and every message is still answered exactly once. On both databases."""

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

from sandbox.model_server import Delay
from tests.conftest import CUSTOMER, CUSTOMERS, OTHER_CUSTOMERS, SUPPORT, bot_posts
from tests.faults.helpers import echo

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class SplitBot:
    """The real command in HTTP mode, with `processes` worker processes."""

    def __init__(self, tmp_path: Path, database_url: str, slack: Any, model: Any, *,
                 processes: int, sweep_every: str, holding_after: str = "2s") -> None:
        self.port = free_port()
        self.config = tmp_path / "app.yaml"
        self.log = tmp_path / "bot.log"
        self.processes = processes
        self.config.write_text(yaml.safe_dump({
            "slack": {"mode": "http", "bot_token": slack.bot_token,
                      "signing_secret": slack.signing_secret, "api_url": slack.api_url,
                      "http": {"host": "127.0.0.1", "port": self.port},
                      "holding_reaction_after": holding_after},
            "channels": {"support": SUPPORT, "customer": [CUSTOMERS, OTHER_CUSTOMERS]},
            "llm": {"model": "openai/test-model", "api_base": model.base_url,
                    "api_key": "sk-test", "retries": 0},
            "database": {"url": database_url},
            "workers": {"processes": processes, "sweep_every": sweep_every},
        }))
        self.process: asyncio.subprocess.Process | None = None
        slack.connect_http(f"http://127.0.0.1:{self.port}/slack/events")

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LLM_"))}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--config", str(self.config), cwd=ROOT,
                env=env, stdout=log, stderr=log)
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200 and await self.workers_running():
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("the bot did not start:\n" + self.log.read_text())

    async def workers_running(self) -> bool:
        """Every worker process is up and says so in the log."""
        assert self.process is not None
        pids = self.worker_pids()
        text = self.log.read_text()
        return len(pids) == self.processes and all(
            f"worker process {n} running" in text for n in range(self.processes))

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return children_of(self.process.pid)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), timeout=60)


async def answered_once_each(slack: Any, roots: list[str]) -> None:
    """Question n (thread `roots[n]`) gets "answer to question n", and nothing more."""
    for n, ts in enumerate(roots):
        wanted = f"answer to question {n}"
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=90,
                                     predicate=lambda m, w=wanted: m["text"] == w)
    await asyncio.sleep(1.0)  # a second answer, were one coming, would be sent by now
    assert [len(bot_posts(slack, CUSTOMERS, ts)) for ts in roots] == [1] * len(roots)


@pytest.fixture
async def split_bot(tmp_path, database_url, slack, model):
    bots: list[SplitBot] = []

    def make(**kwargs: Any) -> SplitBot:
        bots.append(SplitBot(tmp_path, database_url, slack, model, **kwargs))
        return bots[-1]

    yield make
    for bot in bots:
        await bot.stop()


async def test_worker_processes_are_woken_for_each_message(split_bot, slack, model):
    # No sweep for an hour: only the front's wake-ups can get these answered.
    bot = split_bot(processes=2, sweep_every="1h")
    model.default = echo
    await bot.start()
    assert len(bot.worker_pids()) == 2

    # at once, to cold worker processes
    roots = await asyncio.gather(*(slack.user_posts(CUSTOMERS, CUSTOMER, f"question {n}")
                                   for n in range(6)))
    for n, ts in enumerate(roots):
        wanted = f"answer to question {n}"
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                     predicate=lambda m, w=wanted: m["text"] == w)
    assert [len(bot_posts(slack, CUSTOMERS, ts)) for ts in roots] == [1] * 6
    # Each process asked Slack who the bot is once, at its start: not once for each of the
    # first events its Bolt app authorized at the same time.
    assert len(slack.calls_to("auth.test")) <= 3, len(slack.calls_to("auth.test"))

    await bot.stop()
    assert bot.process.returncode == 0
    log = bot.log.read_text()
    assert "worker process 0 running" in log and "worker process 1 running" in log
    assert bot.worker_pids() == []  # they stopped with the front


async def test_a_slow_answer_gets_its_hourglass_from_the_worker_process(split_bot, slack,
                                                                        model):
    # The front only acks: the ⏳ timer goes down the pipe with the wake-up, and the worker
    # process puts the reaction and takes it off with the answer.
    bot = split_bot(processes=1, sweep_every="1h", holding_after="0s")
    model.default = lambda request: Delay(1.5, echo)
    await bot.start()
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "question 0")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                 predicate=lambda m: m["text"] == "answer to question 0")
    await slack.wait_for_call("reactions.remove", timeout=30)
    [added] = slack.calls_to("reactions.add")
    [removed] = slack.calls_to("reactions.remove")
    assert added.params["timestamp"] == removed.params["timestamp"] == ts
    assert slack.calls.index(added) < slack.calls.index(removed)
    assert "malformed line" not in bot.log.read_text()


async def test_a_killed_worker_process_is_replaced_and_nothing_is_lost(split_bot, slack, model):
    bot = split_bot(processes=1, sweep_every="1s")
    model.default = lambda request: Delay(2.0, echo)  # slow model: the kill lands mid-answer
    await bot.start()
    [worker] = bot.worker_pids()
    roots = [await slack.user_posts(CUSTOMERS, CUSTOMER, f"question {n}") for n in range(3)]
    await model.wait_for_request(timeout=30)

    os.kill(worker, signal.SIGKILL)
    model.default = echo
    for _ in range(600):
        if (pids := bot.worker_pids()) and pids != [worker]:
            break
        await asyncio.sleep(0.1)
    assert bot.worker_pids() and bot.worker_pids() != [worker], "no new worker process"
    assert "exited with -9; starting it again" in bot.log.read_text()

    roots.append(await slack.user_posts(CUSTOMERS, CUSTOMER, "question 3"))
    await answered_once_each(slack, roots)


async def test_a_worker_process_that_cannot_ask_who_the_bot_is_still_answers(split_bot, slack,
                                                                              model):
    """Slack refuses the auth.test a (restarted) worker process asks at its start: it says so
    and runs, and its Bolt app asks again with the first event, which is answered."""
    bot = split_bot(processes=1, sweep_every="1h")
    model.default = echo
    await bot.start()
    [worker] = bot.worker_pids()
    slack.fail_next("auth.test", error="fatal_error")
    os.kill(worker, signal.SIGKILL)
    for _ in range(600):
        if bot.log.read_text().count("worker process 0 running") == 2:
            break
        await asyncio.sleep(0.1)
    assert "could not ask Slack who the bot is yet (SlackApiError)" in bot.log.read_text()

    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "question 0")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, timeout=60,
                                 predicate=lambda m: m["text"] == "answer to question 0")
    assert len(bot_posts(slack, CUSTOMERS, ts)) == 1


async def test_one_of_two_worker_processes_killed_mid_answer_loses_nothing(split_bot, slack,
                                                                            model):
    """The default on two cores, SQLite's too since both wait for the write lock on their
    loops: one worker process killed while answers are under way in both (it may hold SQLite's
    write lock). The other goes on, the dead one is started again, and every message is
    answered exactly once."""
    bot = split_bot(processes=2, sweep_every="1s")
    model.default = lambda request: Delay(2.0, echo)  # slow model: the kill lands mid-answer
    await bot.start()
    first, second = bot.worker_pids()
    roots = list(await asyncio.gather(*(slack.user_posts(CUSTOMERS, CUSTOMER, f"question {n}")
                                        for n in range(4))))
    await model.wait_for_request(timeout=30)

    os.kill(first, signal.SIGKILL)
    model.default = echo
    for _ in range(600):
        if len(pids := bot.worker_pids()) == 2 and first not in pids:
            break
        await asyncio.sleep(0.1)
    assert second in bot.worker_pids() and first not in bot.worker_pids()
    assert "exited with -9; starting it again" in bot.log.read_text()

    roots.append(await slack.user_posts(CUSTOMERS, CUSTOMER, "question 4"))
    await answered_once_each(slack, roots)
