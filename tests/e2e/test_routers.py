"""Issue 5: each router on scripted inputs; a router's decision is recorded with its reason."""

from __future__ import annotations

from sqlalchemy import select

from bot.toolkit import texts
from sandbox.model_server import Reply, ToolCalls
from storage.models import AssignmentChange
from tests.conftest import CUSTOMER, CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.helpers import conversation


async def changes(bot) -> list[AssignmentChange]:
    async with bot.services.sessions() as session:
        return list((await session.execute(select(AssignmentChange))).scalars())


async def assert_handed_to_humans(bot, slack, ts, reason_part):
    told = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts,
        predicate=lambda m: m["text"] == texts.customer_handed_to_humans())
    assert told
    card = await slack.wait_for_message(SUPPORT)
    assert "Case #1" in str(card["blocks"])
    await bot.services.idle()
    assert (await conversation(bot)).assignee == "humans"
    [change] = await changes(bot)
    assert change.to_assignee == "humans" and reason_part in change.reason


async def test_transfer_to_human_tool(bot, slack, model):
    model.script(ToolCalls([("transferToHuman", {"reason": "customer asked for a person"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "I want to talk to a person")
    await assert_handed_to_humans(bot, slack, ts, "customer asked for a person")
    tools = [t["function"]["name"] for t in model.requests[0]["tools"]]
    assert tools == ["askHuman", "transferToHuman"]


async def test_classifier_router(start, slack, model):
    bot = await start(routing={"router": "classifier", "model": "openai/cheap-fast"})
    model.script(Reply('{"needs_human": true, "reason": "legal threat"}'))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "My lawyer will contact you.")
    await assert_handed_to_humans(bot, slack, ts, "router classifier: legal threat")
    assert model.requests[0]["model"] == "cheap-fast"
    assert len(model.requests) == 1  # the main model was never called


async def test_classifier_router_lets_the_bot_answer(start, slack, model):
    await start(routing={"router": "classifier"})
    model.script(Reply('{"needs_human": false, "reason": "simple question"}'),
                 Reply("We open at 9."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "When do you open?")
    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    assert reply["text"] == "We open at 9."


async def test_embeddings_router_against_the_sandbox_endpoint(start, slack, model, tmp_path):
    examples = tmp_path / "examples.yaml"
    examples.write_text(
        "- {text: 'I want to speak to a manager right now', route: human}\n"
        "- {text: 'cancel my contract and refund everything', route: human}\n"
        "- {text: 'what are your opening hours', route: bot}\n"
        "- {text: 'how do I reset my password', route: bot}\n")
    bot = await start(routing={"router": "embeddings", "examples_file": str(examples),
                               "threshold": 0.5})
    model.script(Reply("Reset it under Settings."))
    ok = await slack.user_posts(CUSTOMERS, CUSTOMER, "how do I reset my password please")
    assert (await slack.wait_for_message(CUSTOMERS, thread_ts=ok))["text"] == (
        "Reset it under Settings.")
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "I want to speak to a manager")
    told = await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts,
        predicate=lambda m: m["text"] == texts.customer_handed_to_humans())
    assert told
    await bot.services.idle()
    [change] = await changes(bot)
    assert "router embeddings: similar to 'I want to speak to a manager right now'" in (
        change.reason)
    # Example embeddings were computed once and cached.
    assert len(model.embedding_requests) == 3


async def test_structured_router(start, slack, model):
    bot = await start(routing={"router": "structured"})
    model.script(Reply('{"answer": "Sure!", "needs_human": false, "reason": ""}'),
                 Reply('{"answer": "", "needs_human": true, "reason": "account deletion"}'))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Hi there")
    assert (await slack.wait_for_message(CUSTOMERS, thread_ts=ts))["text"] == "Sure!"
    assert model.requests[0]["response_format"] == {"type": "json_object"}
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Delete my account", thread_ts=ts)
    await slack.wait_for_message(
        CUSTOMERS, thread_ts=ts,
        predicate=lambda m: m["text"] == texts.customer_handed_to_humans())
    await bot.services.idle()
    [change] = await changes(bot)
    assert change.reason == "router structured: account deletion"
    assert bot_posts(slack, CUSTOMERS, ts)[0]["text"] == "Sure!"


async def test_explicit_assignment_wins_over_routers(start, slack, model):
    bot = await start(routing={"router": "classifier"})
    model.script(Reply('{"needs_human": false, "reason": "x"}'), Reply("answer"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()
    await bot.services.handoff.claim_unowned(1, user_id="U0STAFF", reason="test")
    calls = len(model.requests)
    await slack.user_posts(CUSTOMERS, CUSTOMER, "still there?", thread_ts=ts)
    await bot.services.idle()
    assert len(model.requests) == calls
