"""Issue 3: a customer writes in a customer channel and the bot answers in that thread."""

from __future__ import annotations

from sqlalchemy import select

from bot.toolkit import texts
from sandbox.model_server import Delay, Reply
from storage.models import Conversation, Message
from tests.conftest import CUSTOMER, CUSTOMERS, GUEST, OTHER_CUSTOMERS


async def history(bot, channel: str, thread_ts: str) -> list[Message]:
    async with bot.services.sessions() as session:
        rows = await session.execute(select(Message).order_by(Message.id))
        return [m for m in rows.scalars()]


async def test_top_level_message_is_answered_in_its_thread(bot, slack, model):
    model.script(Reply("You can reset it under **Settings → Security**."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I reset my password?")

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)

    assert reply["text"] == "You can reset it under *Settings → Security*."
    assert reply["thread_ts"] == ts
    await bot.services.idle()
    stored = await history(bot, CUSTOMERS, ts)
    assert [(m.role, m.status) for m in stored] == [("user", "success"), ("assistant", "success")]
    assert stored[0].text == "How do I reset my password?"
    assert stored[1].slack_ts == reply["ts"]
    assert stored[1].model and stored[1].prompt_tokens and stored[1].completion_tokens


async def test_a_slow_answer_shows_the_holding_reaction_until_it_comes(start, slack, model):
    await start(slack={"holding_reaction_after": "0s"})
    model.script(Delay(1.0, Reply("Here it is.")))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "How do I reset my password?")

    # The customer saw that the bot is on it, and the sign went away with the answer.
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await slack.wait_for_call("reactions.remove")
    [added] = slack.calls_to("reactions.add")
    assert added.params["name"] == texts.holding_reaction()
    assert added.params["timestamp"] == ts
    [removed] = slack.calls_to("reactions.remove")
    assert removed.params["timestamp"] == ts
    assert slack.calls.index(added) < slack.calls.index(removed)


async def test_a_quick_answer_puts_no_holding_reaction(start, slack, model):
    bot = await start(slack={"holding_reaction_after": "1h"})
    model.script(Reply("Quick."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Fast one?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    # The answer came first, so the ⏳ due later is never put (the database decides).
    async with bot.services.sessions() as session:
        conversation = (await session.execute(select(Conversation).where(
            Conversation.thread_ts == ts))).scalar_one()
        assert await bot.services.posts.put_holding_reaction(
            session, conversation_id=conversation.id, channel=CUSTOMERS, customer_ts=ts) is None
    assert slack.calls_to("reactions.add") == []
    assert slack.calls_to("reactions.remove") == []


async def test_reply_in_thread_uses_the_earlier_messages(bot, slack, model):
    model.script(Reply("Our plans start at $10."), Reply("Yes, annual billing saves 20%."))
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "What does it cost?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=root)

    await slack.user_posts(CUSTOMERS, CUSTOMER, "Is there a discount for a year?", thread_ts=root)
    second = await slack.wait_for_message(
        CUSTOMERS, thread_ts=root, predicate=lambda m: "annual" in (m.get("text") or ""))

    assert second["thread_ts"] == root
    sent = model.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "What does it cost?"
    assert sent[2]["content"] == "Our plans start at $10."
    assert sent[3]["content"] == "Is there a discount for a year?"


async def test_two_quick_messages_are_answered_in_order(bot, slack, model):
    model.script(Reply("first answer"), Reply("second answer"))
    root = await slack.user_posts(CUSTOMERS, CUSTOMER, "one")
    await slack.user_posts(CUSTOMERS, CUSTOMER, "two", thread_ts=root)

    await slack.wait_for_message(CUSTOMERS, thread_ts=root,
                                 predicate=lambda m: m.get("text") == "second answer")
    await bot.services.idle()

    answers = [m["text"] for m in slack.messages(CUSTOMERS, thread_ts=root) if m.get("bot_id")]
    assert answers == ["first answer", "second answer"]
    # The second model call saw the first message, its answer and the second message.
    second_call = model.requests[1]["messages"]
    assert [m.get("content") for m in second_call[1:]] == ["one", "first answer", "two"]


async def test_threads_in_different_channels_are_separate_conversations(bot, slack, model):
    model.script_for("acme", Reply("hello acme"))
    model.script_for("globex", Reply("hello globex"))
    a = await slack.user_posts(CUSTOMERS, CUSTOMER, "hi from acme")
    b = await slack.user_posts(OTHER_CUSTOMERS, CUSTOMER, "hi from globex")

    assert (await slack.wait_for_message(CUSTOMERS, thread_ts=a))["text"] == "hello acme"
    assert (await slack.wait_for_message(OTHER_CUSTOMERS, thread_ts=b))["text"] == "hello globex"
    for request in model.requests:
        users = [m["content"] for m in request["messages"] if m["role"] == "user"]
        assert len(users) == 1


async def test_slack_connect_guest_is_answered_like_any_customer(bot, slack, model):
    model.script(Reply("Welcome!"))
    ts = await slack.user_posts(CUSTOMERS, GUEST, "Hi, I'm from the customer's workspace")
    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    assert reply["text"] == "Welcome!"


async def test_long_answer_streamed_arrives_whole_in_one_message(bot, slack, model):
    """Streamed (the default), an answer up to Slack's 12,000 characters is one message."""
    long_answer = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(12))
    model.script(Reply(long_answer))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Tell me everything")

    await slack.wait_for_call("chat.stopStream")
    await bot.services.idle()
    [post] = [m for m in slack.messages(CUSTOMERS, thread_ts=ts) if m.get("bot_id")]
    assert post["text"] == long_answer
    assert all(len(c.params.get("markdown_text") or "") <= 12_000
               for c in slack.calls if c.method.endswith("Stream"))


async def test_markdown_is_converted_and_long_answers_are_split(start, slack, model):
    bot = await start(slack={"streaming": False})
    long_answer = "\n\n".join(f"Paragraph {i}: " + "word " * 150 for i in range(12))
    model.script(Reply(long_answer))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Tell me everything")

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    posts = [m for m in slack.messages(CUSTOMERS, thread_ts=ts) if m.get("bot_id")]
    assert len(posts) > 1
    assert all(len(p["text"]) <= 3900 for p in posts)
    assert " ".join(p["text"] for p in posts).split() == long_answer.split()
