"""Issue 3: retried deliveries answer once; bots, edits, joins and other channels are ignored."""

from __future__ import annotations

from sqlalchemy import func, select

from sandbox.model_server import Reply
from storage.models import Message
from tests.conftest import CUSTOMER, CUSTOMERS, INTERNAL, OTHER_BOT, STAFF, SUPPORT, bot_posts


def bot_replies(slack, channel, thread_ts):
    return bot_posts(slack, channel, thread_ts)


async def message_count(bot) -> int:
    async with bot.services.sessions() as session:
        return (await session.execute(select(func.count()).select_from(Message))).scalar_one()


async def test_retried_event_is_answered_once(bot, slack, model):
    model.script(Reply("only once"), Reply("a second reply must never be posted"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    first_event = next(d for d in slack.deliveries
                       if d.payload.get("event", {}).get("ts") == ts).event_id

    retry = await slack.redeliver(first_event)
    assert retry.status == 200
    await bot.services.idle()
    await slack.settle()

    assert [m["text"] for m in bot_replies(slack, CUSTOMERS, ts)] == ["only once"]
    assert len(model.requests) == 1
    assert await message_count(bot) == 2


async def test_mention_delivered_as_message_and_app_mention_gets_one_reply(bot, slack, model):
    model.script(Reply("one reply"), Reply("a second reply must never be posted"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "<@U0BOT> can you help?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    await slack.settle()

    kinds = sorted(d.payload["event"]["type"] for d in slack.deliveries
                   if d.payload.get("event", {}).get("ts") == ts)
    assert kinds == ["app_mention", "message"]
    assert [m["text"] for m in bot_replies(slack, CUSTOMERS, ts)] == ["one reply"]
    assert model.requests[0]["messages"][-1]["content"] == "can you help?"


async def test_bots_edits_deletions_joins_and_other_channels_get_no_reply(bot, slack, model):
    model.script(Reply("must not be posted"))
    await slack.user_posts(CUSTOMERS, OTHER_BOT, "I am another bot")
    await slack.user_posts(INTERNAL, CUSTOMER, "a message in a channel that is not a customer one")
    await slack.user_posts(SUPPORT, STAFF, "staff chatting in the support channel")
    await slack.user_joins(CUSTOMERS, "U0NEWBIE")
    await bot.services.idle()
    await slack.settle()

    assert model.requests == []
    assert not bot_posts(slack, CUSTOMERS)
    assert await message_count(bot) == 0


async def test_edits_and_deletions_of_customer_messages_do_not_start_a_turn(bot, slack, model):
    model.script(Reply("answer"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "first")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await slack.user_edits(CUSTOMERS, ts, "first (edited)", CUSTOMER)
    await slack.user_deletes(CUSTOMERS, ts)
    await bot.services.idle()
    await slack.settle()

    assert len(model.requests) == 1
    assert await message_count(bot) == 2


async def test_bots_own_posts_echoed_back_are_ignored(bot, slack, model):
    model.script(Reply("hello"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hi")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    await slack.settle()
    echoed = [d for d in slack.deliveries if d.payload.get("event", {}).get("bot_id")]
    assert echoed, "the emulator echoes the bot's own post back, like Slack"
    assert len(model.requests) == 1
