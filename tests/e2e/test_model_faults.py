"""Issue 10: bad model output never goes silent or loops.

Faults come from the sandbox model server on demand (empty or null answers, unknown tools
forever, unreadable tool arguments); the bot runs for real against the Slack emulator.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.toolkit import texts
from sandbox.model_server import Delay, Empty, Error, Forever, Reply, ToolCalls
from storage.models import Conversation, Message, WorkItem, utcnow
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT, bot_posts
from tests.e2e.helpers import all_rows, requests

GAVE_UP_NOTE = texts.model_failed_customer()


def customer_posts(slack: Any, ts: str) -> list[str]:
    return [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)]


def gave_up_staff(reason: str) -> str:
    return texts.model_gave_up_staff(1, reason, "/handoff")


async def settled(bot: Any) -> None:
    """Wait until the bot has nothing left to do: no drain running, no open work item."""
    await bot.services.idle()
    assert [w.kind for w in await all_rows(bot, WorkItem) if w.status == "open"] == []


def tool_messages(request: dict[str, Any]) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


# empty and unusable answers ----------------------------------------------------------------

async def test_an_empty_answer_is_retried_then_staff_and_customer_are_told_once(
        bot, slack, model):
    model.script(Empty(), Empty(content=""), Reply("never asked for"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "what are your opening hours?")

    staff = await slack.wait_for_message(SUPPORT)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await settled(bot)

    assert len(model.requests) == 2  # the first try and one retry (llm.empty_answer_retries)
    assert customer_posts(slack, ts) == [GAVE_UP_NOTE]
    assert staff["text"] == gave_up_staff(texts.model_no_usable_answer(2))
    assert "Case #1" in staff["text"]
    assert [m["text"] for m in bot_posts(slack, SUPPORT)] == [staff["text"]]


async def test_nonsense_once_then_a_good_answer_reaches_the_customer_alone(bot, slack, model):
    model.script(Empty(), Reply("We are open 9 to 5."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "what are your opening hours?")

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await settled(bot)

    assert customer_posts(slack, ts) == ["We are open 9 to 5."]
    assert bot_posts(slack, SUPPORT) == []
    assert len(model.requests) == 2


async def test_an_unknown_tool_once_then_a_good_answer(bot, slack, model):
    model.script(ToolCalls([("lookupOrder", {"order": 42})]), Reply("Order 42 has shipped."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "where is order 42?")

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await settled(bot)

    assert customer_posts(slack, ts) == ["Order 42 has shipped."]
    assert bot_posts(slack, SUPPORT) == []
    assert len(model.requests) == 2
    [result] = tool_messages(model.requests[1])
    assert result.startswith("There is no tool named 'lookupOrder'")


async def test_a_rate_limited_model_is_retried_and_the_answer_arrives(bot, slack, model):
    model.script(Error(429, retry_after=1), Reply("Here you go."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello?")

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await settled(bot)

    assert customer_posts(slack, ts) == ["Here you go."]
    assert len(model.requests) == 2
    assert bot_posts(slack, SUPPORT) == []


# runaway loops --------------------------------------------------------------------------------

async def test_an_unknown_tool_forever_is_bounded_and_staff_are_told(bot, slack, model):
    model.script(Forever(ToolCalls([("lookupOrder", {"order": 42})])))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "where is order 42?")

    staff = await slack.wait_for_message(SUPPORT)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await settled(bot)

    assert len(model.requests) == 3  # llm.max_tool_errors
    assert staff["text"] == gave_up_staff(
        texts.model_tool_errors(3, texts.unknown_tool_error("lookupOrder")))
    assert customer_posts(slack, ts) == [GAVE_UP_NOTE]
    assert len(bot_posts(slack, SUPPORT)) == 1


async def test_the_steps_of_one_message_are_bounded(start, slack, model):
    bot = await start(llm={"max_steps_per_message": 4, "max_tool_errors": 50})
    model.script(Forever(ToolCalls([("lookupOrder", {"order": 42})])))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "where is order 42?")

    staff = await slack.wait_for_message(SUPPORT)
    await settled(bot)

    assert len(model.requests) == 4
    assert staff["text"] == gave_up_staff(texts.model_step_limit(4))
    assert customer_posts(slack, ts) == [GAVE_UP_NOTE]


async def test_the_next_customer_message_gets_a_fresh_allowance(bot, slack, model):
    model.script(Forever(ToolCalls([("lookupOrder", {"order": 42})])))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "where is order 42?")
    await slack.wait_for_message(SUPPORT)
    await settled(bot)

    model.clear_script()
    model.script(Reply("It shipped yesterday."))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "any news?", thread_ts=ts)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "It shipped yesterday.")
    await settled(bot)

    assert customer_posts(slack, ts) == [GAVE_UP_NOTE, "It shipped yesterday."]
    assert len(model.requests) == 4


async def test_the_step_count_survives_a_restart(start, slack, model):
    """Steps are counted from stored rows: a bot that restarts mid-loop does not start over."""
    settings = {"max_steps_per_message": 3, "max_tool_errors": 50}
    first = await start(llm=settings)
    model.script(ToolCalls([("lookupOrder", {"order": 42})]),
                 Delay(30, then=Reply("never delivered")))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "where is order 42?")
    await model.wait_for_request(since=1)  # the second step is with the model
    await first.services.worker.stop_now()  # the process dies mid-step
    await first.stop()
    async with first.services.sessions() as session:
        conversation = await session.get(Conversation, 1)
        conversation.lease_until = utcnow()  # ... and its lease runs out
        await session.commit()

    model.clear_script()
    model.script(Forever(ToolCalls([("lookupOrder", {"order": 42})])))
    second = await start(llm=settings)
    staff = await slack.wait_for_message(SUPPORT)
    await settled(second)

    assert len(model.requests) == 3  # two before the restart, one after
    assert staff["text"] == gave_up_staff(texts.model_step_limit(3))
    assert customer_posts(slack, ts) == [GAVE_UP_NOTE]
    # The step the crash cut short is kept as failed (it counts), none is left pending.
    async with second.services.sessions() as session:
        steps = (await session.execute(select(Message.status).where(
            Message.role == "assistant"))).scalars().all()
    assert sorted(steps) == ["failed", "success", "success"], steps


# unreadable tool arguments ---------------------------------------------------------------

async def test_an_askhuman_with_broken_json_gets_a_readable_card(bot, slack, model):
    raw = '{"question": "Can order 42 ship to Mars'
    model.script(ToolCalls([("askHuman", raw)]), Reply("Yes, it can."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "can you ship to Mars?")

    card = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()

    [request] = await requests(bot)
    assert request.question == texts.unreadable_question(raw)
    assert request.question.startswith("(the model asked without a readable question)\n```")
    shown = json.dumps(card["blocks"])
    assert json.dumps(texts.human_request_question(1, request.question))[1:-1] in shown

    await slack.user_posts(SUPPORT, STAFF, "Yes, via SpaceX.", thread_ts=card["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Yes, it can.")
    assert tool_messages(model.requests[-1]) == ["Yes, via SpaceX."]


async def test_an_askhuman_with_plain_text_arguments_shows_the_text(bot, slack, model):
    model.script(ToolCalls([("askHuman", "Can order 42 ship to Mars?")]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "can you ship to Mars?")

    card = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()

    [request] = await requests(bot)
    assert request.question == "Can order 42 ship to Mars?"
    assert card["text"].endswith(": Can order 42 ship to Mars?")


async def test_a_transfer_with_broken_arguments_gets_a_tool_error_it_recovers_from(
        start, slack, model):
    bot = await start(routing={"router": "tool"})
    model.script(ToolCalls([("transferToHuman", "{reason: customer wants")]),
                 ToolCalls([("transferToHuman", {"reason": "the customer asked for a person"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "let me talk to a person")

    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await settled(bot)

    assert len(model.requests) == 2
    [error] = tool_messages(model.requests[1])
    assert error.startswith("The arguments of your transferToHuman call could not be read")
    async with bot.services.sessions() as session:
        assert (await session.get(Conversation, 1)).assignee == "humans"
    assert GAVE_UP_NOTE not in customer_posts(slack, ts)
