"""Issue 4: who may answer, answers that come late or twice, buttons, and restarts."""

from __future__ import annotations

import asyncio

from bot.toolkit import texts
from bot.toolkit.ids import RequestAction, RequestView
from sandbox import offline_model
from sandbox.model_server import Delay, Reply, ToolCalls
from storage.models import Conversation, utcnow
from tests.conftest import (
    CUSTOMER,
    CUSTOMERS,
    STAFF,
    STAFF_2,
    SUPPORT,
    SUPPORT_GUEST,
    bot_posts,
)
from tests.e2e.helpers import asked, ephemerals_for, requests, stored_messages


async def test_a_reply_from_someone_who_is_not_staff_answers_nothing(bot, slack, model):
    _, post = await asked(bot, slack, model)
    await slack.user_posts(SUPPORT, SUPPORT_GUEST, "sure, why not", thread_ts=post["ts"])
    await slack.wait_for_call("chat.postEphemeral")
    await bot.services.idle()

    assert ephemerals_for(slack, SUPPORT_GUEST) == [texts.not_staff_answer()]
    assert [r.status for r in await requests(bot)] == ["pending"]
    assert len(model.requests) == 1


async def test_a_late_answer_to_an_answered_request_changes_nothing(bot, slack, model):
    ts, post = await asked(bot, slack, model)
    # Sky opens the answer modal; meanwhile Sam answers in the thread.
    await slack.click_button(user=STAFF_2, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.answer, value="1")
    view_id = (await slack.wait_for_call("views.open")).response["view"]["id"]
    await slack.user_posts(SUPPORT, STAFF, "Yes, via SpaceX.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Final answer.")
    await bot.services.idle()

    late = await slack.submit_view(view_id, user=STAFF_2, values={
        RequestView.answer_block: {RequestView.answer_input: "No, never."}})
    assert "already answered by Sam Staff" in late.body
    # A second reply in the thread has no question left to answer: told privately.
    await slack.user_posts(SUPPORT, STAFF_2, "#1 No, never.", thread_ts=post["ts"])
    await slack.wait_for_call("chat.postEphemeral")
    assert "already answered by Sam Staff" in ephemerals_for(slack, STAFF_2)[0]
    [request] = await requests(bot)
    assert (request.answer, request.answered_by) == ("Yes, via SpaceX.", STAFF)
    assert len(model.requests) == 2


async def test_answer_button_opens_a_modal_whose_submission_answers(bot, slack, model):
    ts, post = await asked(bot, slack, model)
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.answer, value="1")
    opened = await slack.wait_for_call("views.open")
    view_id = opened.response["view"]["id"]
    assert "Can we ship to Mars?" in str(opened.params)

    await slack.submit_view(view_id, user=STAFF, values={
        RequestView.answer_block: {RequestView.answer_input: "Only to Phobos."}})
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Final answer.")
    assert model.requests[-1]["messages"][-1]["content"] == "Only to Phobos."


async def test_let_the_bot_answer_and_cancel_buttons(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "q1"}), ("askHuman", {"question": "q2"})]),
                 Reply("Done on my own."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hard question")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()

    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.bot_answers, value="1")
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.cancel, value="2")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Done on my own.")
    tools = [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"]
    assert tools == [texts.bot_answers_alone_result("Sam Staff"),
                     texts.request_cancelled_result("Sam Staff")]
    assert [r.status for r in await requests(bot)] == ["answered", "cancelled"]


async def test_buttons_refuse_people_who_are_not_staff(bot, slack, model):
    _, post = await asked(bot, slack, model)
    await slack.click_button(user=SUPPORT_GUEST, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.cancel, value="1")
    await slack.wait_for_call("chat.postEphemeral")
    assert "Only support staff" in ephemerals_for(slack, SUPPORT_GUEST)[0]
    assert [r.status for r in await requests(bot)] == ["pending"]


async def test_two_staff_answering_at_once_exactly_one_wins(bot, slack, model):
    await asked(bot, slack, model)
    results = await asyncio.gather(
        bot.services.human_answers.answer(request_id=1, text="A", user_id=STAFF,
                                           name="Sam Staff"),
        bot.services.human_answers.answer(request_id=1, text="B", user_id=STAFF_2,
                                           name="Sky Staff"),
        return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1
    assert "already answered" in str(losers[0])
    tools = [m for m in await stored_messages(bot) if m.role == "tool"]
    assert len(tools) == 1


async def test_a_pending_question_survives_a_restart(start, slack, model):
    first = await start()
    ts, post = await asked(first, slack, model, final="Answered after the restart.")
    await first.stop()

    second = await start()
    await slack.user_posts(SUPPORT, STAFF, "Yes we can.", thread_ts=post["ts"])
    reply = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == "Answered after the restart.")
    assert reply
    assert model.requests[-1]["messages"][-1]["content"] == "Yes we can."
    await second.services.idle()


async def test_a_turn_interrupted_by_a_crash_is_resumed(start, slack, model):
    """The work item is recorded before the model runs; a bot that dies mid-turn leaves it
    open, and the next bot (or replica) picks it up once the lease runs out."""
    first = await start()
    model.script(Delay(30, then=Reply("never delivered")), Reply("Resumed after the crash."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Hello?")
    await model.wait_for_request()
    await first.services.worker.stop_now()  # the process dies mid-turn
    await first.stop()
    async with first.services.sessions() as session:
        conversation = await session.get(Conversation, 1)
        conversation.lease_until = utcnow()  # ... and its lease runs out
        await session.commit()

    await start()
    reply = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == "Resumed after the crash.")
    assert reply
    assert not [m for m in bot_posts(slack, CUSTOMERS, ts) if m["text"] == "never delivered"]


async def test_let_the_bot_answer_makes_the_demo_model_answer_on_its_own(bot, slack, model):
    """The offline demo model follows the instruction in the tool result: it answers the
    customer itself and never repeats what staff told the bot."""
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    post = await slack.wait_for_message(SUPPORT)  # the offline model asks staff
    await bot.services.idle()
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.bot_answers, value="1")
    answer = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == offline_model.GENERIC)
    assert "asked you to answer" not in answer["text"]
    assert "Our team says" not in answer["text"]
