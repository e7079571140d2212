"""Every Slack post is sent once: a resend after a crash finds its own earlier post, and a post
Slack refuses for good is reported to staff instead of blocking the conversation."""

from __future__ import annotations

from sandbox.model_server import Reply
from storage import outbox_posts
from storage.models import OutboxPost
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows


async def test_a_resend_after_a_crash_does_not_post_twice(bot, slack, model):
    model.script(Reply("first answer"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    # Slack accepted a post, then the process died before recording it: the row is still
    # pending, claimed for that attempt, and the post (with its outbox key) is in the thread.
    posted = await bot.services.slack.post_message(
        channel=CUSTOMERS, thread_ts=ts, text="posted before the crash",
        metadata={"event_type": "support_bot_post",
                  "event_payload": {"outbox_key": "crash-test"}})
    async with bot.services.sessions() as session:
        post_id = await outbox_posts.add_post(
            session, key="crash-test", method="chat.postMessage", conversation_id=1,
            args={"channel": CUSTOMERS, "thread_ts": ts, "text": "posted before the crash"})
        row = await outbox_posts.get_post(session, post_id)
        row.attempts, row.maybe_sent = 1, True  # what the claim before the call leaves
        await session.commit()

    await bot.services.outbox.send_pending(1)

    texts = [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)]
    assert texts.count("posted before the crash") == 1
    row = next(r for r in await all_rows(bot, OutboxPost) if r.key == "crash-test")
    assert (row.status, row.slack_ts) == ("sent", posted["ts"])


async def test_a_post_slack_refuses_for_good_is_reported_to_staff(bot, slack, model):
    model.script(Reply("this answer cannot be delivered"), Reply("but this one can"))
    slack.fail_next("chat.postMessage", error="is_archived")
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello?")

    notice = await slack.wait_for_message(SUPPORT, predicate=lambda m: "is_archived" in m["text"])
    assert "Case #1" in notice["text"]
    await bot.services.idle()
    [failed] = [r for r in await all_rows(bot, OutboxPost) if r.status == "failed"]
    assert failed.error == "is_archived"
    # The conversation is not blocked: the next answer goes out.
    await slack.user_posts(CUSTOMERS, CUSTOMER, "still there?", thread_ts=ts)
    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                         predicate=lambda m: m["text"] == "but this one can")
    assert reply
