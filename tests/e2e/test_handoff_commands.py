"""Issue 5: every /handoff command, wrong usage, unknown cases and non-staff refusals."""

from __future__ import annotations

from bot.toolkit import texts
from sandbox.model_server import Reply, ToolCalls
from tests.conftest import CUSTOMER, CUSTOMERS, GUEST, STAFF, STAFF_2, SUPPORT
from tests.e2e.helpers import conversation, requests


async def command(slack, text, user=STAFF, channel=SUPPORT):
    result = await slack.slash_command("/handoff", text, user=user, channel=channel)
    assert result.status == 200
    return result.json()["text"]


async def a_case(bot, slack, model):
    model.script(ToolCalls([("askHuman", {"question": "Discount allowed?"})]))
    ts = await slack.user_posts(CUSTOMERS, CUSTOMER, "Can I get a discount?")
    await slack.wait_for_message(SUPPORT)
    await bot.services.idle()
    return ts


async def test_status_list_assign_and_resolve(bot, slack, model):
    await a_case(bot, slack, model)

    status = await command(slack, "status 1")
    assert "Case #1" in status and "the bot" in status and "Discount allowed?" in status
    listing = await command(slack, "list")
    assert "#1 Carol Customer" in listing and "1 pending question" in listing

    assert "<@U0STAFF2>" in await command(slack, "assign #1 <@U0STAFF2|sky>")
    assert (await conversation(bot)).assignee == STAFF_2
    assert "already assigned" in await command(slack, "assign 1 <@U0STAFF2>")

    assert "Done" in await command(slack, "resolve 1")
    case = await conversation(bot)
    assert case.status == "resolved" and case.assignee == "bot"
    assert "already resolved" in await command(slack, "resolve 1")


async def test_help_wrong_usage_and_unknown_case(bot, slack, model):
    assert "/handoff take 42" in await command(slack, "help")
    assert "/handoff take 42" in await command(slack, "")
    wrong = await command(slack, "take")
    assert "didn't understand" in wrong and "/handoff take 42" in wrong
    assert "Pick the person" in await command(slack, "assign 1 sky")
    assert await command(slack, "take 99") == texts.unknown_case("#99")
    assert await command(slack, "take abc") == texts.unknown_case("abc")


async def test_customers_and_guests_are_refused_politely(bot, slack, model):
    await a_case(bot, slack, model)
    for user in (CUSTOMER, GUEST):
        reply = await command(slack, "take 1", user=user, channel=CUSTOMERS)
        assert reply == texts.not_staff()
    assert (await conversation(bot)).assignee == "bot"
    assert [r.status for r in await requests(bot)] == ["pending"]


async def test_assigning_to_someone_who_is_not_staff_is_refused(bot, slack, model):
    await a_case(bot, slack, model)
    reply = await command(slack, f"assign 1 <@{CUSTOMER}>")
    assert "not on the support team" in reply
    assert (await conversation(bot)).assignee == "bot"


async def test_a_resolved_case_reopens_when_the_customer_writes_again(bot, slack, model):
    ts = await a_case(bot, slack, model)
    await command(slack, "resolve 1")
    model.script(Reply("Welcome back."))
    await slack.user_posts(CUSTOMERS, CUSTOMER, "One more thing", thread_ts=ts)
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Welcome back.")
    assert (await conversation(bot)).status == "open"
