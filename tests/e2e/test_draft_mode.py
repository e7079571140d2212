"""Issue 5: in draft mode the bot proposes in the support thread and a person sends."""

from __future__ import annotations

import pytest

from bot.errors import StaleAction
from bot.toolkit import texts
from bot.toolkit.ids import DraftAction, DraftView
from sandbox.model_server import Reply
from tests.conftest import CUSTOMER, CUSTOMERS, OTHER_CUSTOMERS, STAFF, SUPPORT, bot_posts
from tests.e2e.helpers import stored_messages


async def draft_card(slack):
    return await slack.wait_for_message(
        SUPPORT, predicate=lambda m: "draft" in m["text"] and m.get("thread_ts"))


async def test_draft_is_sent_only_when_staff_approve(start, slack, model):
    bot = await start(channels={"draft": [CUSTOMERS]})
    model.script(Reply("Your order ships **today**."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "When does my order ship?")
    card = await draft_card(slack)
    await bot.services.idle()

    assert "Your order ships *today*." in str(card["blocks"])
    # The customer sees that the team is on it, but not the draft.
    assert [m["text"] for m in bot_posts(slack, CUSTOMERS, ts)] == [
        texts.customer_team_is_on_it()]
    assert [m.status for m in await stored_messages(bot)] == ["success"]

    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=card["ts"],
                             action_id=DraftAction.send)
    sent = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                        predicate=lambda m: "today" in m["text"])
    assert sent["text"] == "Your order ships *today*."
    await bot.services.idle()
    answer = (await stored_messages(bot))[-1]
    assert answer.meta["approved_by"]["slack_user_id"] == STAFF
    assert answer.meta["approved_by"]["edited"] is False
    await slack.wait_for_call("chat.update", lambda c: c.params.get("ts") == card["ts"])
    closed = next(m for m in slack.messages(SUPPORT) if m["ts"] == card["ts"])
    assert "Sent to the customer by Sam Staff" in closed["text"]



async def test_edited_and_discarded_drafts(start, slack, model):
    bot = await start(channels={"draft": True})
    model.script(Reply("Refunds take 5 days."), Reply("Something wrong."))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "How long do refunds take?")
    card = await draft_card(slack)
    await bot.services.idle()

    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=card["ts"],
                             action_id=DraftAction.edit)
    opened = await slack.wait_for_call("views.open")
    await slack.submit_view(opened.response["view"]["id"], user=STAFF, values={
        DraftView.edit_block: {DraftView.edit_input: "Refunds take 3 to 5 business days."}})
    sent = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                        predicate=lambda m: "business days" in m["text"])
    assert sent
    await bot.services.idle()
    answer = (await stored_messages(bot))[-1]
    assert answer.text == "Refunds take 3 to 5 business days."
    assert answer.meta["approved_by"]["edited"] is True

    await slack.user_posts(CUSTOMERS, CUSTOMER, "And shipping?", thread_ts=ts)
    second = await slack.wait_for_message(
        SUPPORT, predicate=lambda m: "Something wrong" in str(m.get("blocks")))
    discarded_id = int(second["blocks"][-1]["elements"][0]["value"])
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=second["ts"],
                             action_id=DraftAction.discard)
    await bot.services.idle()
    assert not [m for m in bot_posts(slack, CUSTOMERS, ts) if "wrong" in m["text"]]
    await slack.wait_for_call("chat.update", lambda c: c.params.get("ts") == second["ts"])
    closed = next(m for m in slack.messages(SUPPORT) if m["ts"] == second["ts"])
    assert "Discarded by Sam Staff" in closed["text"]
    # A click that arrives after the draft was handled (a stale card) changes nothing.
    with pytest.raises(StaleAction):
        await bot.services.drafts.send(message_id=discarded_id, user_id=STAFF,
                                       name="Sam Staff")


async def test_draft_mode_is_per_channel(start, slack, model):
    await start(channels={"draft": [CUSTOMERS]})
    model.script_for("globex", Reply("Automatic answer."))
    ts = await slack.user_posts(OTHER_CUSTOMERS, CUSTOMER, "hello from globex")
    reply = await slack.wait_for_message(OTHER_CUSTOMERS, thread_ts=ts)
    assert reply["text"] == "Automatic answer."
