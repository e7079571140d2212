"""Messages that arrive together in one thread each get their own place in the history and
their own answer, in order, on both databases (two replicas included)."""

from __future__ import annotations

import asyncio
from typing import Any

from storage.models import Message
from tests.conftest import CUSTOMER, CUSTOMERS, bot_posts
from tests.e2e.helpers import all_rows
from tests.faults.helpers import echo


async def burst_into_one_thread(slack: Any, count: int) -> tuple[str, list[str]]:
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "message 0")
    texts = [f"message {n}" for n in range(1, count)]
    await asyncio.gather(*(slack.user_posts(CUSTOMERS, CUSTOMER, text, thread_ts=root)
                           for text in texts))
    return root, ["message 0", *texts]


async def wait_for_answers(slack: Any, root: str, texts: list[str]) -> list[str]:
    for text in texts:
        await slack.wait_for_message(CUSTOMERS, thread_ts=root, timeout=60,
                                     predicate=lambda m, t=text: m["text"] == f"answer to {t}")
    return [m["text"] for m in bot_posts(slack, CUSTOMERS, root)
            if m["text"].startswith("answer to")]


async def test_a_burst_into_one_thread_is_answered_message_by_message(bot, slack, model):
    model.default = echo

    root, texts = await burst_into_one_thread(slack, 12)
    answers = await wait_for_answers(slack, root, texts)

    assert sorted(answers) == sorted(f"answer to {t}" for t in texts)  # each once
    rows = await all_rows(bot, Message)
    positions = [(m.order, m.step_order) for m in rows]
    assert len(positions) == len(set(positions))
    users = sorted(m.order for m in rows if m.role == "user")
    assert users == list(range(len(texts)))


async def test_two_replicas_receiving_a_burst_answer_each_message_once(start, slack, model):
    model.default = echo
    first = await start()
    await start()  # the emulator now delivers to the second; the first keeps working too

    root, texts = await burst_into_one_thread(slack, 8)
    answers = await wait_for_answers(slack, root, texts)
    await first.services.idle()

    assert sorted(answers) == sorted(f"answer to {t}" for t in texts)
