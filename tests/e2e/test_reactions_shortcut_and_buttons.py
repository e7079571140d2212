"""Issue 5: 👀 and ✅ reactions, the message shortcut, and case buttons (with stale clicks)."""

from __future__ import annotations

from bot.toolkit.ids import CaseAction, CaseView
from sandbox.model_server import Reply, ToolCalls
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, STAFF_2, SUPPORT, SUPPORT_GUEST
from tests.e2e.helpers import conversation


async def a_case(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Which size?"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Do you have it in XL?")
    post = await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    return ts, post


async def test_eyes_claims_and_check_mark_resolves(bot, slack, model):
    ts, post = await a_case(bot, slack, model)
    await slack.add_reaction(SUPPORT, post["ts"], "eyes", STAFF_2)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF_2

    await slack.add_reaction(CUSTOMERS, ts, "white_check_mark", STAFF)
    await bot.services.idle()
    assert (await conversation(bot)).status == "resolved"


async def test_reactions_from_people_who_are_not_staff_change_nothing(bot, slack, model):
    ts, post = await a_case(bot, slack, model)
    await slack.add_reaction(SUPPORT, post["ts"], "eyes", SUPPORT_GUEST)
    await slack.add_reaction(CUSTOMERS, ts, "white_check_mark", CUSTOMER)
    await bot.services.idle()
    case = await conversation(bot)
    assert (case.assignee, case.status) == ("bot", "open")


async def test_message_shortcut_takes_over_a_conversation(bot, slack, model):
    model.script(Reply("bot answer"))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "hello")
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts)
    await bot.services.idle()

    await slack.message_shortcut("case-take-shortcut", user=STAFF, channel=CUSTOMERS,
                                 message_ts=ts)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF
    card = await slack.wait_for_message(SUPPORT)
    assert "Case #1" in str(card["blocks"])

    await slack.message_shortcut("case-take-shortcut", user=CUSTOMER, channel=CUSTOMERS,
                                 message_ts=ts)
    await slack.wait_for_call("chat.postEphemeral", lambda c: c.params["user"] == CUSTOMER)
    assert (await conversation(bot)).assignee == STAFF


async def test_case_buttons_take_return_assign_and_a_stale_second_click(bot, slack, model):
    ts, post = await a_case(bot, slack, model)
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=CaseAction.take)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF

    # The post keeps the case's buttons; a second click changes nothing and says so privately.
    await slack.wait_for_call("chat.update")
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=CaseAction.take)
    stale = await slack.wait_for_call("chat.postEphemeral")
    assert "already assigned" in stale.params["text"]

    # Assign through the modal.
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=CaseAction.assign)
    opened = await slack.wait_for_call("views.open")
    await slack.submit_view(opened.response["view"]["id"], user=STAFF, values={
        CaseView.assign_block: {CaseView.assign_input: {"type": "users_select",
                                                        "selected_user": STAFF_2}}})
    await bot.services.idle()
    assert (await conversation(bot)).assignee == STAFF_2

    model.script(Reply("Back to you, bot here."))
    await slack.click_button(user=STAFF, channel=SUPPORT, message_ts=post["ts"],
                             action_id=CaseAction.return_to_bot)
    await bot.services.idle()
    assert (await conversation(bot)).assignee == "bot"
    # The customer's last message was unanswered: the bot answers it on return.
    reply = await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                         predicate=lambda m: "bot here" in m["text"])
    assert reply
