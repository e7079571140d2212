"""Issue 6: a customer waiting on staff longer than `notify_customer_after` is told, once."""

from __future__ import annotations

from datetime import timedelta

from bot.toolkit import texts
from sandbox.model_server import Reply
from storage import conversations
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT, bot_posts
from tests.e2e.followup_helpers import ask, thread_posts_with, timers, wait_until
from tests.e2e.helpers import conversation


def notices(slack, ts):
    return [m for m in bot_posts(slack, CUSTOMERS, ts)
            if m["text"] == texts.customer_holding_notice()]


async def test_a_waiting_customer_is_told_once(start, slack, model):
    bot = await start(timers=timers(notify_customer_after="1s", remind_after="3s",
                                    max_reminders=1))
    ts, post = await ask(slack, model)

    notice = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == texts.customer_holding_notice())
    assert notice["thread_ts"] == ts
    case = await conversation(bot)
    assert case.customer_notified_at is not None and case.waiting_on_humans_since is not None

    # Later follow-ups run (the reminder), the notice is not repeated.
    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder 1/1" in m["text"])
    assert await bot.followups.notify_customers() == 0
    await bot.services.idle()
    assert len(notices(slack, ts)) == 1


async def test_a_customer_waiting_on_a_person_who_owns_the_case_is_told(start, slack, model):
    bot = await start(timers=timers(notify_customer_after="1s"))
    model.script(Reply("Hi! How can I help?"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    async with bot.services.sessions() as session:
        case = await conversations.get_conversation(session, 1)
        await conversations.change_assignee(session, case, to=STAFF, by=STAFF,
                                            reason="test takes the case")
        await session.commit()
    calls = len(model.requests)

    await slack.user_posts(CUSTOMERS, CUSTOMER, "Anyone there?", thread_ts=ts)
    notice = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == texts.customer_holding_notice())
    assert notice
    assert len(model.requests) == calls  # a person owns the case: no model turn
    assert await bot.followups.notify_customers() == 0
    assert len(notices(slack, ts)) == 1
    assert not thread_posts_with(slack, ts, "Reminder", channel=CUSTOMERS)


async def test_a_customer_answered_by_staff_meanwhile_is_not_told(start, slack, model):
    bot = await start(timers=timers(notify_customer_after="1s"))
    model.script(Reply("Hi! How can I help?"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    async with bot.services.sessions() as session:
        case = await conversations.get_conversation(session, 1)
        await conversations.change_assignee(session, case, to=STAFF, by=STAFF,
                                            reason="test takes the case")
        await session.commit()

    await slack.user_posts(CUSTOMERS, CUSTOMER, "Anyone there?", thread_ts=ts)
    await slack.user_posts(CUSTOMERS, STAFF, "Yes, Sam here. Looking now.", thread_ts=ts)
    await slack.settle()
    await bot.services.idle()
    since = (await conversation(bot)).waiting_on_humans_since
    assert since is not None
    await wait_until(since + timedelta(seconds=1))

    assert await bot.followups.notify_customers() == 0
    await bot.services.idle()
    assert notices(slack, ts) == []
    assert (await conversation(bot)).waiting_on_humans_since is None


async def test_each_wait_gets_its_own_notice(start, slack, model):
    bot = await start(timers=timers(notify_customer_after="1s"))
    ts, post = await ask(slack, model, Reply("Refund approved."))
    await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == texts.customer_holding_notice())
    await slack.user_posts(SUPPORT, STAFF, "Approved.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Refund approved.")
    await bot.services.idle()
    assert (await conversation(bot)).waiting_on_humans_since is None

    async with bot.services.sessions() as session:
        case = await conversations.get_conversation(session, 1)
        await conversations.change_assignee(session, case, to=STAFF, by=STAFF,
                                            reason="test takes the case")
        await session.commit()
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Thanks! When will I see it?", thread_ts=ts)
    last = notices(slack, ts)[-1]["ts"]
    second = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, since_ts=last,
        predicate=lambda m: m["text"] == texts.customer_holding_notice())
    assert second and len(notices(slack, ts)) == 2
