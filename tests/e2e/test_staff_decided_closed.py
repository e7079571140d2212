"""Issue 10: staff is decided closed, and the support channel must stay internal.

Only people Slack vouches for (users.info: a full member of our workspace) or admins listed in
`staff.users` are staff; a member of the support channel whose users.info fails, a guest, or
anyone while Slack is unreachable is not. A support channel shared with another workspace stops
start-up, and pauses the bot's posts there when it happens at run time.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.config import ConfigError
from bot.toolkit import texts
from sandbox.model_server import Reply, ToolCalls
from tests.conftest import (
    CUSTOMER,
    CUSTOMER_TEAM,
    CUSTOMERS,
    STAFF,
    STAFF_2,
    SUPPORT,
    SUPPORT_GUEST,
    bot_posts,
)
from tests.e2e.helpers import asked, ephemerals_for, requests, stored_messages

CONNECT_USER = "U0CONNECT"  # a Slack Connect user from another org: users.info fails
MARS = "Shipping to Mars is fine."


async def add_connect_user_to(slack, *channels):
    slack.add_user(CONNECT_USER, "cass", real_name="Cass Connect", team_id=CUSTOMER_TEAM,
                   is_stranger=True)
    slack.ws.strangers_not_found = True  # users.info answers user_not_found, as Slack does
    for channel in channels:
        await slack.user_joins(channel, CONNECT_USER)




async def reply_is_refused(bot, slack, user, post, text="Yes, we do."):
    before, since = len(ephemerals_for(slack, user)), len(slack.calls)
    await slack.user_posts(SUPPORT, user, text, thread_ts=post["ts"])
    await slack.wait_for_call("chat.postEphemeral",
                              predicate=lambda c: c.params.get("user") == user, since=since)
    await bot.services.idle()
    assert ephemerals_for(slack, user)[before:] == [texts.not_staff_answer()]
    assert [r.status for r in await requests(bot)] == ["pending"]


async def test_a_support_member_whose_users_info_fails_cannot_answer(bot, slack, model):
    await add_connect_user_to(slack, SUPPORT)
    _, post = await asked(bot, slack, model, final=MARS)

    await reply_is_refused(bot, slack, CONNECT_USER, post)

    assert len(model.requests) == 1  # the model was not continued
    assert any(c.response.get("error") == "user_not_found"
               for c in slack.calls_to("users.info") if c.params.get("user") == CONNECT_USER)


async def test_an_unverifiable_support_member_is_a_customer_in_a_customer_channel(
        bot, slack, model):
    await add_connect_user_to(slack, SUPPORT, CUSTOMERS)
    model.script(Reply("Happy to help, Cass."))

    ts = await slack.user_posts(CUSTOMERS, CONNECT_USER, "How do I reset my password?")

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    assert reply["text"] == "Happy to help, Cass."
    assert [m.role for m in await stored_messages(bot)] == ["user", "assistant"]


async def test_the_same_user_listed_in_staff_users_is_staff(start, slack, model):
    bot = await start(staff={"users": [CONNECT_USER]})
    await add_connect_user_to(slack, SUPPORT, CUSTOMERS)
    ts, post = await asked(bot, slack, model, final=MARS)

    await slack.user_posts(SUPPORT, CONNECT_USER, "Yes, Mars is in range.", thread_ts=post["ts"])
    final = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == "Shipping to Mars is fine.")
    assert final
    [request] = await requests(bot)
    assert (request.status, request.answered_by) == ("answered", CONNECT_USER)

    # In a customer channel they are an agent: saved as the agent's words, not answered.
    calls = len(model.requests)
    await slack.user_posts(CUSTOMERS, CONNECT_USER, "We'll ship on Monday.", thread_ts=ts)
    await bot.services.idle()
    await slack.settle()
    assert len(model.requests) == calls
    last = (await stored_messages(bot))[-1]
    assert (last.role, last.text) == ("assistant", "We'll ship on Monday.")
    assert last.meta["provider"] == "human"


async def test_a_guest_in_the_support_channel_is_not_staff(bot, slack, model):
    _, post = await asked(bot, slack, model, final=MARS)

    await reply_is_refused(bot, slack, SUPPORT_GUEST, post)

    assert not await bot.services.people.is_staff(SUPPORT_GUEST)
    assert len(model.requests) == 1


async def test_slack_unreachable_means_not_staff_then_staff_once_it_answers(bot, slack, model):
    ts, post = await asked(bot, slack, model, final=MARS)
    # users.info fails with 503 on every attempt (the client's own retries included).
    slack.fail_next("users.info", error="service_unavailable", status=503, times=1000)

    await reply_is_refused(bot, slack, STAFF, post, text="Yes, Mars is fine.")
    assert len(model.requests) == 1

    # Slack answers again: the failure was not remembered, the next reply is asked afresh.
    slack.clear_faults("users.info")
    await slack.user_posts(SUPPORT, STAFF, "Yes, Mars is fine.", thread_ts=post["ts"])
    final = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == "Shipping to Mars is fine.")
    assert final
    [request] = await requests(bot)
    assert (request.status, request.answered_by) == ("answered", STAFF)


async def test_a_burst_of_cold_lookups_asks_slack_once(bot, slack):
    since = len(slack.calls)
    people = bot.services.people

    verdicts = await asyncio.gather(*[people.is_staff(user) for user in
                                      [STAFF, STAFF_2, SUPPORT_GUEST, CUSTOMER] * 10])
    assert verdicts == [True, True, False, False] * 10
    assert await people.is_staff(STAFF)  # cached now

    calls = slack.calls[since:]
    assert [c.method for c in calls].count("conversations.members") == 1
    looked_up = sorted(c.params["user"] for c in calls if c.method == "users.info")
    assert looked_up == sorted([STAFF, STAFF_2, SUPPORT_GUEST])


@pytest.mark.parametrize("pending", [False, True], ids=["shared", "invitation-pending"])
async def test_start_up_refuses_a_support_channel_shared_with_another_workspace(
        start, slack, pending):
    await slack.share_channel(SUPPORT, CUSTOMER_TEAM, pending=pending)

    with pytest.raises(ConfigError) as refused:
        await start()

    assert str(refused.value) == texts.support_channel_shared_at_start(SUPPORT, [CUSTOMER_TEAM])
    assert "channels.support=C0SUPPORT is shared with another workspace" in str(refused.value)


async def test_sharing_the_support_channel_pauses_posts_there_until_unshared(bot, slack, model):
    await slack.share_channel(SUPPORT, CUSTOMER_TEAM)
    notice = await slack.wait_for_message(SUPPORT, predicate=lambda m: m["thread_ts"] is None)
    assert notice["text"] == texts.support_channel_paused()

    # A question for staff: the customer still hears from the bot, the support channel doesn't.
    model.script(ToolCalls([("askHuman", {"question": "Can we ship to Mars?"})],
                           text="Let me check with the team."),
                 Reply("Shipping to Mars is fine."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    holding = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    assert holding["text"] == "Let me check with the team."
    await bot.services.idle()
    await bot.services.worker.sweep()
    await bot.services.idle()
    assert bot_posts(slack, SUPPORT) == [notice]
    [request] = await requests(bot)
    assert request.status == "pending" and request.support_ts is None

    # Unshared: the held case post follows, after a notice; nothing was lost.
    await slack.unshare_channel(SUPPORT, CUSTOMER_TEAM)
    post = await slack.wait_for_message(SUPPORT, predicate=lambda m: "Case #1" in str(
        m.get("blocks")))
    resumed = [m for m in bot_posts(slack, SUPPORT)
               if m["text"] == texts.support_channel_resumed(1)]
    assert len(resumed) == 1 and float(resumed[0]["ts"]) < float(post["ts"])

    await slack.user_posts(SUPPORT, STAFF, "Yes, Mars is fine.", thread_ts=post["ts"])
    final = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == "Shipping to Mars is fine.")
    assert final


async def test_an_unshare_that_leaves_another_workspace_keeps_the_pause(bot, slack):
    await slack.share_channel(SUPPORT, CUSTOMER_TEAM)
    await slack.share_channel(SUPPORT, "T0GLOBEX")
    await slack.unshare_channel(SUPPORT, CUSTOMER_TEAM)

    assert bot.services.support_channel.paused
    assert [m["text"] for m in bot_posts(slack, SUPPORT)] == [texts.support_channel_paused()]


async def test_a_replica_that_missed_the_event_follows_on_its_next_check(start, slack):
    first = await start()
    second = await start()  # Slack now delivers to this one only
    await slack.share_channel(SUPPORT, CUSTOMER_TEAM)
    assert second.services.support_channel.paused
    assert not first.services.support_channel.paused

    await first.services.support_channel.refresh()  # its once-a-minute check
    assert first.services.support_channel.paused

    await slack.unshare_channel(SUPPORT, CUSTOMER_TEAM)
    assert not second.services.support_channel.paused
    await first.services.support_channel.refresh()
    assert not first.services.support_channel.paused
    assert [m["text"] for m in bot_posts(slack, SUPPORT)] == [
        texts.support_channel_paused(), texts.support_channel_resumed(0)]
