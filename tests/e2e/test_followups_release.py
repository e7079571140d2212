"""Issue 6: a case owned by one staff member, idle for `release_after`, goes back."""

from __future__ import annotations

from sqlalchemy import select

from sandbox.model_server import Reply
from storage import conversations
from storage.models import AssignmentChange
from tests.conftest import CUSTOMER, CUSTOMERS, STAFF, SUPPORT
from tests.e2e.followup_helpers import ask, timers
from tests.e2e.helpers import conversation


async def staff_takes_the_case(bot) -> None:
    """What /handoff take does to the assignment (that command is tested on its own)."""
    async with bot.services.sessions() as session:
        case = await conversations.get_conversation(session, 1)
        await conversations.change_assignee(session, case, to=STAFF, by=STAFF,
                                            reason="took the case")
        await session.commit()


async def answered_case(bot, slack, model, *then):
    """Case #1 with a support thread: the model asked, staff answered, the customer got it."""
    ts, post = await ask(slack, model, Reply("Yes, order 1042 can be refunded."), *then)
    await slack.user_posts(SUPPORT, STAFF, "Yes, refund it.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: "can be refunded" in m["text"])
    await bot.services.idle()
    return ts, post


async def changes(bot) -> list[AssignmentChange]:
    async with bot.services.sessions() as session:
        rows = await session.execute(select(AssignmentChange).order_by(AssignmentChange.id))
        return list(rows.scalars())


async def test_an_idle_case_goes_back_to_the_bot_which_answers_the_customer(start, slack, model):
    bot = await start(timers=timers(release_after="1s", release_to="bot"))
    ts, post = await answered_case(bot, slack, model, Reply("The bot is back: how can I help?"))
    await staff_takes_the_case(bot)

    await slack.user_posts(CUSTOMERS, CUSTOMER, "And the shipping costs?", thread_ts=ts)
    note = await slack.wait_for_message(
        SUPPORT, thread_ts=post["ts"], predicate=lambda m: "went back to the bot" in m["text"])
    assert "Case #1" in note["text"] and f"<@{STAFF}>" in note["text"]
    back = "The bot is back: how can I help?"
    assert await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                        predicate=lambda m: m["text"] == back)
    assert model.requests[-1]["messages"][-1] == {"role": "user",
                                                  "content": "And the shipping costs?"}

    case = await conversation(bot)
    assert case.assignee == "bot" and case.waiting_on_humans_since is None
    last = (await changes(bot))[-1]
    assert (last.from_assignee, last.to_assignee, last.changed_by) == (STAFF, "bot", "scheduler")
    assert last.reason.startswith("no human activity for")
    assert await bot.followups.release_idle() == 0


async def test_an_idle_case_can_go_back_to_the_team_instead(start, slack, model):
    bot = await start(timers=timers(release_after="1s", release_to="humans"))
    _, post = await answered_case(bot, slack, model)
    await staff_takes_the_case(bot)
    calls = len(model.requests)

    note = await slack.wait_for_message(
        SUPPORT, thread_ts=post["ts"], predicate=lambda m: "unassigned again" in m["text"])
    assert "Case #1" in note["text"] and f"<@{STAFF}>" in note["text"]
    assert note["text"].endswith("anyone can take it.")
    await bot.services.idle()
    case = await conversation(bot)
    assert case.assignee == "humans"
    assert len(model.requests) == calls  # nobody gave it to the bot
    assert (await changes(bot))[-1].changed_by == "scheduler"
    assert await bot.followups.release_idle() == 0  # unassigned cases are not released again
