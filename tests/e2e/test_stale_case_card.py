"""A *Take over* button re-checks the assignee its card was drawn for: an old card never
silently takes a case from the staff member who has it now."""

from __future__ import annotations

from sqlalchemy import select

from bot.toolkit import texts
from bot.toolkit.ids import CaseAction
from sandbox.model_server import ToolCalls
from storage.models import AssignmentChange
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, STAFF_2, SUPPORT
from tests.e2e.helpers import conversation, support_thread_posts


async def handed_to_humans(bot, slack, model) -> dict:
    """Case #1, handed to the support team by the model: its card is drawn for `humans`."""
    model.script(ToolCalls([("transferToHuman", {"reason": "customer asked for a person"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "I want to talk to a person")
    card = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == "humans"
    return card


def take_button(card: dict) -> dict:
    return next(element for block in card["blocks"] for element in block.get("elements", [])
                if element.get("action_id") == CaseAction.take)


async def assignees(bot) -> list[tuple[str, str]]:
    async with bot.services.sessions() as session:
        rows = await session.execute(select(AssignmentChange).order_by(AssignmentChange.id))
        return [(c.from_assignee, c.to_assignee) for c in rows.scalars()]


async def test_a_stale_take_over_click_is_refused_and_changes_nothing(bot, slack, model):
    card = await handed_to_humans(bot, slack, model)
    assert take_button(card)["value"] == "1:humans"

    # A fresh card: staff A takes the case over.
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=card["ts"],
                             action_id=CaseAction.take)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF
    await slack.wait_for_message(SUPPORT, thread_ts=card["ts"],
                                 predicate=lambda m: f"<@{STAFF}>" in m["text"])
    thread_before = support_thread_posts(slack, card["ts"])
    posts_before = len(slack.calls_to("chat.postMessage"))

    # Staff B clicks the same button on the card as B's Slack still shows it, drawn for the
    # support team (the live card was redrawn for A meanwhile): refused, privately.
    await slack.click_button(user=STAFF_2, channel=SUPPORT, message_ts=card["ts"],
                             action_id=CaseAction.take, value=take_button(card)["value"])
    refusal = await slack.wait_for_call("chat.postEphemeral",
                                        lambda call: call.params["user"] == STAFF_2)
    assert refusal.params["text"] == texts.stale_button(1, STAFF, "/handoff")
    assert f"<@{STAFF}>" in refusal.params["text"]
    assert "/handoff status #1" in refusal.params["text"]
    await bot.services.idle()

    assert (await conversation(bot)).assignee == STAFF
    assert await assignees(bot) == [("bot", "humans"), ("humans", STAFF)]
    assert support_thread_posts(slack, card["ts"]) == thread_before
    assert len(slack.calls_to("chat.postMessage")) == posts_before


async def test_a_question_post_seen_before_a_take_over_is_stale_too(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Which size?"})]))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you have it in XL?")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    drawn_for_bot = take_button(post)["value"]
    assert drawn_for_bot == "1:bot"

    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=CaseAction.take)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF

    # Staff B's Slack still showed the post as drawn while the bot had the case.
    await slack.click_button(user=STAFF_2, channel=SUPPORT, message_ts=post["ts"],
                             action_id=CaseAction.take, value=drawn_for_bot)
    refusal = await slack.wait_for_call("chat.postEphemeral",
                                        lambda call: call.params["user"] == STAFF_2)
    assert refusal.params["text"] == texts.stale_button(1, STAFF, "/handoff")
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF


async def test_a_card_drawn_before_buttons_carried_their_state_still_works(bot, slack, model):
    card = await handed_to_humans(bot, slack, model)
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=card["ts"],
                             action_id=CaseAction.take, value="1")
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF
