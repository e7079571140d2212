"""Issue 3: Slack rate limits are retried; a failing model is surfaced to customer and staff."""

from __future__ import annotations

from bot.toolkit import texts
from sandbox.model_server import Error, Reply
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts


async def test_rate_limited_post_is_retried_after_retry_after(bot, slack, model):
    model.script(Reply("delivered despite the rate limit"))
    slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=1)
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hi")

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)

    assert reply["text"] == "delivered despite the rate limit"
    statuses = [c.status for c in slack.calls_to("chat.postMessage")]
    assert statuses[:2] == [429, 200]
    await bot.services.idle()
    assert len(bot_posts(slack, CUSTOMERS, ts)) == 1


async def test_model_failure_tells_the_customer_and_staff_and_keeps_the_message(
        bot, slack, model):
    model.script(Error(status=500), Error(status=500), Error(status=500))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "are you there?")

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    staff = await slack.wait_for_message(SUPPORT)

    assert reply["text"] == texts.model_failed_customer()
    assert "Case #1" in staff["text"] and "model failed" in staff["text"]
    assert len(model.requests) >= 2  # retried before giving up
    async with bot.services.sessions() as session:
        from storage.messages import list_history
        history = await list_history(session, 1)
    assert [m.text for m in history] == ["are you there?"]


async def test_next_message_after_a_model_failure_is_answered(bot, slack, model):
    model.script(Error(status=500), Error(status=500), Error(status=500),
                 Reply("back online"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "first try")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    await slack.user_posts(CUSTOMERS, CUSTOMER, "second try", thread_ts=ts)
    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                         predicate=lambda m: m["text"] == "back online")
    assert reply["thread_ts"] == ts
    users = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "user"]
    assert users == ["first try", "second try"]
