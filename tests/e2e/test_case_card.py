"""Issue 14: the case card is the case. The first post of each support thread shows the case's
current state and only the buttons that make sense in it, after every change."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.toolkit.ids import CaseAction, RequestAction
from sandbox.model_server import Reply, ToolCalls
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, STAFF_2, SUPPORT
from tests.e2e.helpers import conversation

CASE_BUTTONS = {CaseAction.take, CaseAction.return_to_bot, CaseAction.assign,
                CaseAction.resolve, CaseAction.reopen}


def current(slack: Any, ts: str) -> dict[str, Any]:
    return next(m for m in slack.messages(SUPPORT) if m["ts"] == ts)


def buttons(card: dict[str, Any]) -> set[str]:
    return {element["action_id"] for block in card["blocks"] if block["type"] == "actions"
            for element in block["elements"]} & CASE_BUTTONS


async def settled(bot: Any, slack: Any, ts: str) -> dict[str, Any]:
    await bot.services.idle()
    await bot.services.worker.sweep()
    await bot.services.idle()
    return current(slack, ts)


async def click(slack: Any, user: str, ts: str, action: str, value: str | None = None) -> None:
    await slack.click_button(user=user, channel=SUPPORT, message_ts=ts, action_id=action,
                             value=value)


async def test_the_card_follows_take_return_resolve_and_reopen(bot, slack, model):
    model.script(ToolCalls([("transferToHuman", {"reason": "customer asked for a person"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "I want to talk to a person")
    card = await slack.wait_for_message(SUPPORT)
    ts = card["ts"]

    card = await settled(bot, slack, ts)
    assert "Unclaimed" in str(card["blocks"])
    assert buttons(card) == {CaseAction.take, CaseAction.return_to_bot, CaseAction.assign,
                             CaseAction.resolve}

    await click(slack, STAFF, ts, CaseAction.take)
    card = await settled(bot, slack, ts)
    assert f"Owned by <@{STAFF}>" in str(card["blocks"])
    assert "Take over" in str(card["blocks"])  # a colleague may still take it

    model.script(Reply("Back with the bot."))
    await click(slack, STAFF, ts, CaseAction.return_to_bot)
    card = await settled(bot, slack, ts)
    assert "The bot is answering" in str(card["blocks"])
    assert buttons(card) == {CaseAction.take, CaseAction.assign, CaseAction.resolve}

    await click(slack, STAFF, ts, CaseAction.resolve)
    card = await settled(bot, slack, ts)
    assert "Resolved" in str(card["blocks"])
    assert buttons(card) == {CaseAction.reopen}
    assert (await conversation(bot)).status == "resolved"

    await click(slack, STAFF_2, ts, CaseAction.reopen)
    card = await settled(bot, slack, ts)
    assert (await conversation(bot)).status == "open"
    assert CaseAction.resolve in buttons(card) and CaseAction.reopen not in buttons(card)


async def test_a_question_card_shows_the_wait_then_the_answer(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Can we ship to Mars?"})]),
                 Reply("Yes, we can."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    post = await slack.wait_for_message(SUPPORT)
    card = await settled(bot, slack, post["ts"])
    assert "Waiting on staff" in str(card["blocks"]) and "1 question(s) open" in str(
        card["blocks"])
    assert RequestAction.answer in str(card["blocks"])  # the question is still answerable

    await slack.user_posts(SUPPORT, STAFF, "Yes, from next spring.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Yes, we can.")
    card = await settled(bot, slack, post["ts"])
    assert "The bot is answering" in str(card["blocks"])
    assert "answered by Sam Staff" in str(card["blocks"])
    assert RequestAction.answer not in str(card["blocks"])


async def test_two_staff_taking_at_once_one_wins_and_the_card_says_who(bot, slack, model):
    model.script(ToolCalls([("transferToHuman", {"reason": "customer asked for a person"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "I want to talk to a person")
    card = await slack.wait_for_message(SUPPORT)
    card = await settled(bot, slack, card["ts"])
    value = next(e["value"] for b in card["blocks"] if b["type"] == "actions"
                 for e in b["elements"] if e["action_id"] == CaseAction.take)

    await asyncio.gather(click(slack, STAFF, card["ts"], CaseAction.take, value),
                         click(slack, STAFF_2, card["ts"], CaseAction.take, value))
    card = await settled(bot, slack, card["ts"])
    owner = (await conversation(bot)).assignee
    assert owner in (STAFF, STAFF_2)
    assert f"Owned by <@{owner}>" in str(card["blocks"])
    loser = STAFF_2 if owner == STAFF else STAFF
    await slack.wait_for_call("chat.postEphemeral", lambda c: c.params["user"] == loser)
