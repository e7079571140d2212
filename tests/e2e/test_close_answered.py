"""Issue 13: with `timers.close_answered_after`, the bot closes a conversation it answered alone
once the customer has gone quiet, and with `ratings.after_bot_alone` asks them for a rating.
Conversations staff saw stay open; a customer who writes again gets a fresh quiet spell."""

from __future__ import annotations

import asyncio

from bot.toolkit import texts
from sandbox.model_server import Reply, ToolCalls
from storage.models import Conversation, Rating
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.followup_helpers import timers
from tests.e2e.helpers import all_rows

RATINGS = {"enabled": True, "sample": 1, "cooldown": "1h", "after_bot_alone": True}


async def answered(bot, slack, model, text: str) -> str:
    model.script(Reply("We're open 9 to 5."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, text)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    return ts


async def test_a_conversation_the_bot_answered_alone_closes_and_asks_for_a_rating(
        start, slack, model):
    bot = await start(timers=timers(close_answered_after="1s"), ratings=RATINGS)
    await bot.scheduler.pause()  # the test runs the rule itself
    ts = await answered(bot, slack, model, "When are you open?")
    assert await bot.followups.close_answered() == 0  # not quiet long enough yet
    await asyncio.sleep(1.1)
    assert await bot.followups.close_answered() == 1
    await bot.services.idle()
    [case] = await all_rows(bot, Conversation)
    assert case.status == "resolved" and case.resolved_at is not None
    assert case.case_number is None  # staff never had to see it
    prompt = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: texts.rating_prompt() in m["text"])
    assert prompt
    assert len(await all_rows(bot, Rating)) == 1
    assert await bot.followups.close_answered() == 0  # closed once


async def test_conversations_staff_saw_stay_open(
        start, slack, model):
    bot = await start(timers=timers(close_answered_after="1s"), ratings=RATINGS)
    await bot.scheduler.pause()  # the test runs the rule itself
    model.script(ToolCalls([("askHuman", {"question": "Mars?"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    await slack.wait_for_message(SUPPORT)  # a question: staff see the case
    await bot.services.idle()
    model.script(Reply("Here you go."), Reply("..."))
    second = await answered(bot, slack, model, "And to the Moon?")
    await bot.services.worker.sweep()
    await slack.user_posts(CUSTOMERS, CUSTOMER, "thanks, one more thing", thread_ts=second)
    await bot.services.idle()
    await asyncio.sleep(1.1)

    assert await bot.followups.close_answered() == 1
    # The first stays open: staff saw it (it has a case number and a question pending). The
    # second was answered again after "one more thing", and that answer is followed by quiet.
    assert [c.status for c in await all_rows(bot, Conversation)] == ["open", "resolved"]


async def test_without_after_bot_alone_the_case_closes_without_a_prompt(start, slack, model):
    bot = await start(timers=timers(close_answered_after="1s"),
                      ratings={**RATINGS, "after_bot_alone": False})
    await bot.scheduler.pause()
    ts = await answered(bot, slack, model, "When are you open?")
    await asyncio.sleep(1.1)
    assert await bot.followups.close_answered() == 1
    await bot.services.idle()
    assert [c.status for c in await all_rows(bot, Conversation)] == ["resolved"]
    assert not [m for m in bot_posts(slack, CUSTOMERS, ts)
                if texts.rating_prompt() in m["text"]]
    assert await all_rows(bot, Rating) == []


async def test_off_by_default(bot, slack, model):
    await answered(bot, slack, model, "When are you open?")
    assert await bot.followups.close_answered() == 0
    assert [c.status for c in await all_rows(bot, Conversation)] == ["open"]


async def test_a_customer_writing_again_reopens_it(start, slack, model):
    bot = await start(timers=timers(close_answered_after="1s"))
    await bot.scheduler.pause()
    ts = await answered(bot, slack, model, "When are you open?")
    await asyncio.sleep(1.1)
    assert await bot.followups.close_answered() == 1
    model.script(Reply("Also on Saturdays."))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "And on Saturdays?", thread_ts=ts)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Also on Saturdays.")
    [case] = await all_rows(bot, Conversation)
    assert (case.status, case.resolved_at) == ("open", None)
