"""Issue 6: an unanswered question is re-posted in its support thread, mentioning on-call."""

from __future__ import annotations

from bot.toolkit import texts
from tests.conftest import CUSTOMERS, STAFF, STAFF_2, SUPPORT
from tests.e2e.followup_helpers import (
    QUESTION,
    ask,
    honest,
    the_request,
    thread_posts_with,
    timers,
    wait_until,
)

ONCALL = [STAFF_2, "<!subteam^S0ONCALL>"]


async def test_reminders_mention_oncall_at_most_max_reminders_times(start, slack, model):
    bot = await start(timers=timers(remind_after="1s", max_reminders=2, escalate_after="4s"),
                      staff={"oncall": ONCALL})
    _, post = await ask(slack, model)
    thread = post["ts"]

    first = await slack.wait_for_message(
        SUPPORT, thread_ts=thread, predicate=lambda m: "Reminder 1/2" in m["text"])
    assert first["text"] == texts.reminder(1, 1, QUESTION, f"<@{STAFF_2}> <!subteam^S0ONCALL>",
                                           1, 2)
    second = await slack.wait_for_message(
        SUPPORT, thread_ts=thread, predicate=lambda m: "Reminder 2/2" in m["text"])
    assert f"<@{STAFF_2}>" in second["text"] and "<!subteam^S0ONCALL>" in second["text"]

    # Later follow-ups come (the escalation), but no third reminder.
    await slack.wait_for_message(SUPPORT, predicate=lambda m: "has waited" in m["text"])
    assert len(thread_posts_with(slack, thread, ":bell: Reminder")) == 2
    request = await the_request(bot)
    assert (request.reminders_sent, request.remind_at, request.status) == (2, None, "pending")
    assert await bot.followups.remind() == 0


async def test_an_answered_question_is_not_reminded_again(start, slack, model):
    bot = await start(timers=timers(remind_after="2s", max_reminders=3))
    ts, post = await ask(slack, model, honest("Yes, refunded."))
    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder 1/3" in m["text"])

    await slack.user_posts(SUPPORT, STAFF, "Yes, refund it.", thread_ts=post["ts"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts,
                                 predicate=lambda m: m["text"] == "Yes, refunded.")
    request = await the_request(bot)
    assert request.status == "answered" and request.remind_at is not None
    reminded = len(thread_posts_with(slack, post["ts"], ":bell: Reminder"))
    await wait_until(request.remind_at)  # the next reminder would now be due

    assert await bot.followups.remind() == 0
    await bot.services.idle()
    assert len(thread_posts_with(slack, post["ts"], ":bell: Reminder")) == reminded


async def test_no_oncall_configured_still_reminds(start, slack, model):
    await start(timers=timers(remind_after="1s", max_reminders=1))
    _, post = await ask(slack, model)
    reminder = await slack.wait_for_message(
        SUPPORT, thread_ts=post["ts"], predicate=lambda m: "Reminder 1/1" in m["text"])
    assert reminder["text"] == texts.reminder(1, 1, QUESTION, "", 1, 1)
