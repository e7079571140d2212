"""Issue 5: staff take a case over, answer as the agent, and hand it back to the bot."""

from __future__ import annotations

from sqlalchemy import select

from bot.toolkit import texts
from sandbox.model_server import Reply, ToolCalls
from storage.models import AssignmentChange
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT, bot_posts
from tests.e2e.helpers import conversation, requests, stored_messages


async def open_case(bot, slack, model):
    """A conversation whose model asked staff a question: case #1 with a support thread."""
    model.script(ToolCalls([("askHuman", {"question": "Which warehouse ships to Oslo?"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "When will my parcel reach Oslo?")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    return ts, post


async def command(slack, text, user=STAFF):
    result = await slack.slash_command("/handoff", text, user=user, channel=SUPPORT)
    assert result.status == 200
    return result.json()["text"]


async def test_take_relay_forward_note_and_return_to_bot(bot, slack, model):
    ts, post = await open_case(bot, slack, model)

    reply = await command(slack, "take 1")
    assert "case #1" in reply and f"<@{STAFF}>" in reply
    await bot.services.idle()
    case = await conversation(bot)
    assert case.assignee == STAFF
    # The pending question is closed with a result that keeps the history valid.
    [request] = await requests(bot)
    assert request.status == "cancelled"
    tool = next(m for m in await stored_messages(bot) if m.role == "tool")
    assert tool.text == texts.took_over_result(f"<@{STAFF}>")
    # The change is recorded and shown in the support thread.
    async with bot.services.sessions() as session:
        [change] = (await session.execute(select(AssignmentChange))).scalars().all()
    assert (change.from_assignee, change.to_assignee, change.changed_by) == ("bot", STAFF, STAFF)
    note = await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                        predicate=lambda m: "→" in m["text"])
    assert f"<@{STAFF}>" in note["text"]

    # The customer writes: saved, copied to staff, no model call.
    calls_before = len(model.requests)
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Any news?", thread_ts=ts)
    copied = await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                          predicate=lambda m: "Any news?" in m["text"])
    assert "Carol Customer" in copied["text"]
    await bot.services.idle()
    assert len(model.requests) == calls_before

    # Staff reply in the support thread: relayed verbatim under the staff member's name.
    await slack.user_posts(SUPPORT, STAFF, "It ships from Gothenburg tomorrow.",
                           thread_ts=post["ts"])
    relayed = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: "Gothenburg" in m["text"])
    assert relayed["text"] == "It ships from Gothenburg tomorrow."
    assert relayed["username"] == "Sam Staff"
    # A note stays internal.
    await slack.user_posts(SUPPORT, STAFF, "// customer seems anxious", thread_ts=post["ts"])
    await bot.services.idle()
    assert not [m for m in bot_posts(slack, CUSTOMERS, ts) if "anxious" in m["text"]]
    agent = [m for m in await stored_messages(bot) if m.agent_name == "Sam Staff"
             and m.role == "assistant"]
    assert [m.text for m in agent] == ["It ships from Gothenburg tomorrow."]
    assert agent[0].meta["provider"] == "human"
    assert agent[0].slack_ts == relayed["ts"]

    # Back to the bot: the model continues with the whole history, human turns included.
    model.script(Reply("Glad that's sorted. Anything else?"))
    await command(slack, "bot 1")
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Thanks! Which carrier?", thread_ts=ts)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: "Anything else" in m["text"])
    sent = model.requests[-1]["messages"]
    contents = [m.get("content") for m in sent]
    assert "It ships from Gothenburg tomorrow." in contents
    assert "Any news?" in contents and contents[-1] == "Thanks! Which carrier?"
    assert not any("anxious" in (c or "") for c in contents)


async def test_staff_answering_in_the_customer_thread_takes_the_case_over(bot, slack, model):
    model.script(Reply("Bot answer one."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Hello, is my invoice ready?")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    await slack.user_posts(CUSTOMERS, STAFF, "Hi Carol, I'm sending it now.", thread_ts=ts)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF
    card = await slack.wait_for_message(SUPPORT)
    assert "Case #1" in str(card["blocks"])

    await slack.user_posts(CUSTOMERS, CUSTOMER, "Great, thank you!", thread_ts=ts)
    await slack.wait_for_message(SUPPORT, thread_ts=card["ts"],
                                 predicate=lambda m: "Great, thank you!" in m["text"])
    await bot.services.idle()
    assert len(model.requests) == 1
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == ["Bot answer one."]


async def test_editing_and_deleting_a_relayed_reply_follows_to_the_customer(bot, slack, model):
    ts, post = await open_case(bot, slack, model)
    await command(slack, "take 1")
    reply_ts = await slack.user_posts(SUPPORT, STAFF, "Refund is 50 EUR.", thread_ts=post["ts"])
    relayed = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                           predicate=lambda m: "Refund" in m["text"])
    await bot.services.idle()

    await slack.user_edits(SUPPORT, reply_ts, "Refund is 45 EUR.", STAFF)
    await slack.wait_for_call("chat.update", lambda c: c.params.get("ts") == relayed["ts"])
    copy = next(m for m in slack.messages(CUSTOMERS, thread_ts=ts) if m["ts"] == relayed["ts"])
    assert copy["text"] == "Refund is 45 EUR."

    await slack.user_deletes(SUPPORT, reply_ts)
    await slack.wait_for_call("chat.delete", lambda c: c.params.get("ts") == relayed["ts"])
    assert not [m for m in slack.messages(CUSTOMERS, thread_ts=ts) if m["ts"] == relayed["ts"]]
    await bot.services.idle()
    assert not [m for m in await stored_messages(bot) if m.text and "Refund" in m.text]


async def test_staff_reply_on_a_bot_owned_case_asks_what_they_meant(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "ok?"})]), Reply("Thanks, noted."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "question")
    post = await slack.wait_for_message(SUPPORT)
    await slack.user_posts(SUPPORT, STAFF, "yes", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Thanks, noted.")
    await bot.services.idle()

    await slack.user_posts(SUPPORT, STAFF, "FYI we also offer express shipping.",
                           thread_ts=post["ts"])
    choice = await slack.wait_for_call("chat.postEphemeral")
    assert "What should happen" in choice.params["text"]
    await bot.services.idle()
    assert not [m for m in bot_posts(slack, CUSTOMERS, ts) if "express" in m["text"]]

    ephemeral = slack.ephemerals[-1]
    await slack.click_ephemeral_button(user=STAFF, ephemeral_ts=ephemeral["ts"],
                                       action_id="staff-reply-send")
    relayed = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                           predicate=lambda m: "express" in m["text"])
    assert relayed["username"] == "Sam Staff"
    assert (await conversation(bot)).assignee == "bot"  # sent once; the bot keeps the case


async def test_keeping_a_staff_reply_as_a_note_sends_nothing(bot, slack, model):
    model.script(Reply("Bot answer."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "question")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    # Staff never saw the case: they take it from the customer's message (it becomes #1).
    await slack.message_shortcut("case-take-shortcut", user=STAFF, channel=CUSTOMERS,
                                 message_ts=ts)
    card = await slack.wait_for_message(SUPPORT)
    await command(slack, "bot 1")
    await bot.services.idle()
    since = len(slack.calls)
    await slack.user_posts(SUPPORT, STAFF, "internal thought", thread_ts=card["ts"])
    await slack.wait_for_call("chat.postEphemeral", since=since)
    ephemeral = slack.ephemerals[-1]
    await slack.click_ephemeral_button(user=STAFF, ephemeral_ts=ephemeral["ts"],
                                       action_id="staff-reply-note")
    await bot.services.idle()
    assert ephemeral["text"] == "Kept as an internal note; the customer did not see it."
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == ["Bot answer."]
