"""Issue 14: case numbers count the cases staff see, without gaps."""

from __future__ import annotations

import asyncio

from sandbox.model_server import Reply, ToolCalls
from storage import conversations
from storage.models import Conversation
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT
from tests.e2e.helpers import all_rows


async def test_only_conversations_staff_see_get_numbers_and_they_have_no_gaps(bot, slack, model):
    model.script(Reply("Hi! We're open 9 to 5."))
    answered = await slack.user_posts(CUSTOMERS, CUSTOMER, "When are you open?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=answered)
    await bot.services.idle()

    for question in ("Do you ship to Mars?", "Do you ship to Venus?"):
        model.script(ToolCalls([("askHuman", {"question": question})]))
        await slack.user_posts(CUSTOMERS, CUSTOMER, question)
        await slack.wait_for_message(SUPPORT, predicate=lambda m, q=question: q in m["text"])
        await bot.services.idle()

    rows = await all_rows(bot, Conversation)
    assert [row.case_number for row in rows] == [None, 1, 2]
    cards = slack.messages(SUPPORT)
    assert len(cards) == 2
    assert "Case #1" in cards[0]["text"] and "Case #2" in cards[1]["text"]


async def test_cases_surfacing_at_once_get_distinct_numbers(bot, slack, model):
    for text in ("one", "two", "three", "four"):
        model.script(Reply("ok"))
        ts = await slack.user_posts(CUSTOMERS, CUSTOMER, text)
        await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    ids = [row.id for row in await all_rows(bot, Conversation)]

    async def number(conversation_id: int) -> int:
        async with bot.services.sessions() as session:
            conversation = await conversations.get_conversation(session, conversation_id)
            given = await conversations.number_case(session, conversation)
            await session.commit()
            return given

    given = await asyncio.gather(*(number(i) for i in ids), number(ids[0]))
    assert sorted(set(given)) == [1, 2, 3, 4]
    assert given[0] == given[-1]  # numbered once: asking again gives the same number
