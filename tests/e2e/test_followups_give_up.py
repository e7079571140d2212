"""Issue 6: after `give_up_after` the question expires and the model tells the customer."""

from __future__ import annotations

import asyncio

from bot.agent.tools import ASK_HUMAN
from bot.toolkit import texts
from bot.toolkit.ids import RequestAction
from tests.conftest import CUSTOMERS, STAFF, SUPPORT, bot_posts
from tests.e2e.followup_helpers import ask, honest, the_request, timers, wait_until
from tests.e2e.helpers import conversation, stored_messages

HONEST = "Sorry, the team has not answered yet; they will follow up here."


async def test_give_up_tells_the_customer_honestly(start, slack, model):
    bot = await start(timers=timers(give_up_after="1s"))
    ts, post = await ask(slack, model, honest(HONEST))

    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                         predicate=lambda m: m["text"] == HONEST)
    assert reply
    # The model continued from the expired tool result, and saw exactly that.
    sent = model.requests[-1]["messages"]
    call = sent[-2]["tool_calls"][0]
    assert call["function"]["name"] == ASK_HUMAN
    assert sent[-1] == {"role": "tool", "tool_call_id": call["id"],
                        "content": texts.request_expired_result()}
    request = await the_request(bot)
    assert (request.status, request.answered_by, request.answer) == ("expired", "scheduler", None)
    tool = next(m for m in await stored_messages(bot) if m.role == "tool")
    assert tool.meta == {"provider": "system"}
    # Staff see it in the case thread; the question post no longer offers its buttons.
    note = await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                        predicate=lambda m: "Nobody answered" in m["text"])
    assert "question #1" in note["text"]
    await slack.wait_for_call("chat.update")
    updated = next(m for m in slack.messages(SUPPORT) if m["ts"] == post["ts"])
    assert "expired" in updated["text"]
    assert RequestAction.answer.value not in str(updated["blocks"])
    case = await conversation(bot)
    assert case.waiting_on_humans_since is None and case.customer_notified_at is None


async def test_a_late_answer_does_not_reopen_the_expired_question(start, slack, model):
    bot = await start(timers=timers(give_up_after="1s"))
    ts, post = await ask(slack, model, honest(HONEST))
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == HONEST)
    await bot.services.idle()
    calls = len(model.requests)

    await slack.user_posts(SUPPORT, STAFF, "Sorry for the delay: yes, refund it.",
                           thread_ts=post["ts"])
    await slack.settle()
    await bot.services.idle()

    # The question stays expired and the model's history keeps its one result; what staff
    # wrote late reaches the customer as their own words (issue 5's relay), not as a tool result.
    request = await the_request(bot)
    assert request.status == "expired"
    tools = [m for m in await stored_messages(bot) if m.role == "tool"]
    assert [t.text for t in tools] == [texts.request_expired_result()]
    assert len(model.requests) == calls
    assert len([m for m in bot_posts(slack, CUSTOMERS, ts) if m["text"] == HONEST]) == 1
    late = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts,
        predicate=lambda m: m["text"] == "Sorry for the delay: yes, refund it.")
    assert late["username"] == "Sam Staff"
    assert request.answered_by == STAFF and request.answer == "Sorry for the delay: yes, refund it."


async def test_an_answer_racing_the_give_up_has_exactly_one_winner(start, slack, model):
    # The timer is paused after the start-up check; the test runs the give-up when it wants.
    bot = await start(timers=timers(give_up_after="1s", check_every="1h"))
    await bot.scheduler.pause()
    ts, _ = await ask(slack, model, honest(HONEST))
    request = await the_request(bot)
    await wait_until(request.give_up_at)

    results = await asyncio.gather(
        bot.followups.give_up(),
        bot.services.human_answers.answer(request_id=request.id, text="Yes.", user_id=STAFF,
                                           name="Sam Staff"),
        return_exceptions=True)
    bot.services.worker.kick(request.conversation_id)  # as the Slack listener does
    # Either the model continues from the winning result, or (the give-up won) the late
    # answer reaches the customer as the staff member's message.
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] in (HONEST, "Yes."))
    await bot.services.idle()

    request = await the_request(bot)
    tools = [m for m in await stored_messages(bot) if m.role == "tool"]
    assert len(tools) == 1
    if request.status == "expired":
        assert results[0] == 1
        assert tools[0].text == texts.request_expired_result()
    else:
        assert request.status == "answered" and results[0] == 0
        assert tools[0].text == "Yes."
        assert len(model.requests) == 2  # one continuation
    assert len(model.requests) <= 2
