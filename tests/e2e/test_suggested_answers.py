"""Issue 14: the model suggests the answer it would send; staff use it in one click, edit it
first, or answer otherwise, and what they did is recorded."""

from __future__ import annotations

from typing import Any

from bot.toolkit.ids import RequestAction, RequestView
from sandbox.model_server import Reply, ToolCalls
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT
from tests.e2e.helpers import requests, stored_messages

SUGGESTION = "Yes: we ship to Mars from next spring, <!channel> included."


async def asked_with_suggestion(bot: Any, slack: Any, model: Any) -> tuple[str, dict[str, Any]]:
    model.script(ToolCalls([("askHuman", {"question": "Can we ship to Mars?",
                                          "suggested_answer": SUGGESTION})]),
                 Reply("Final answer."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    return ts, post


def tool_results(model: Any) -> list[str]:
    return [m["content"] for m in model.requests[-1]["messages"] if m["role"] == "tool"]


async def test_the_card_shows_the_suggestion_and_use_this_sends_it(bot, slack, model):
    ts, post = await asked_with_suggestion(bot, slack, model)
    shown = str(post["blocks"])
    assert "Suggested answer" in shown and "next spring" in shown
    assert "<!channel>" not in shown  # the model's words ping nobody
    actions = [e["action_id"] for b in post["blocks"] if b["type"] == "actions"
               for e in b["elements"]]
    assert RequestAction.use_suggestion in actions and RequestAction.edit_suggestion in actions

    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.use_suggestion, value="1")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Final answer.")
    assert tool_results(model) == [SUGGESTION]
    [request] = await requests(bot)
    assert (request.status, request.answer, request.suggestion_outcome) == (
        "answered", SUGGESTION, "used")
    tool = next(m for m in await stored_messages(bot) if m.role == "tool")
    human = tool.meta["providerMetadata"]["human"]
    assert (tool.meta["provider"], human["slack_user_id"], tool.meta["suggestion"]) == (
        "human", STAFF, "used")  # approved by the person who clicked


async def test_edit_opens_the_suggestion_and_the_edited_text_is_the_answer(bot, slack, model):
    ts, post = await asked_with_suggestion(bot, slack, model)
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=RequestAction.edit_suggestion, value="1")
    opened = await slack.wait_for_call("views.open")
    assert SUGGESTION in str(opened.params)  # prefilled
    await slack.submit_view(opened.response["view"]["id"], user=STAFF, values={
        RequestView.answer_block: {RequestView.answer_input: "Yes, from next summer."}})
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Final answer.")
    assert tool_results(model) == ["Yes, from next summer."]
    [request] = await requests(bot)
    assert request.suggestion_outcome == "edited"


async def test_a_typed_reply_still_answers_and_counts_as_ignored(bot, slack, model):
    ts, post = await asked_with_suggestion(bot, slack, model)
    await slack.user_posts(SUPPORT, STAFF, "No, only to the Moon.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Final answer.")
    assert tool_results(model) == ["No, only to the Moon."]
    [request] = await requests(bot)
    assert request.suggestion_outcome == "ignored"


async def test_a_question_without_suggestion_has_no_suggestion_buttons(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Can we ship to Mars?",
                                          "suggested_answer": "  "})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you ship to Mars?")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    assert "Suggested answer" not in str(post["blocks"])
    assert RequestAction.use_suggestion not in str(post["blocks"])
    [request] = await requests(bot)
    assert (request.suggested_answer, request.suggestion_outcome) == (None, None)
