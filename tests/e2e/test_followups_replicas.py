"""Issue 6: two app instances on one database fire each follow-up exactly once."""

from __future__ import annotations

import asyncio

from storage.models import HumanRequest
from tests.conftest import CUSTOMERS, SUPPORT, bot_posts
from tests.e2e.followup_helpers import (
    ask,
    honest,
    the_request,
    thread_posts_with,
    timers,
    wait_until,
)
from tests.e2e.helpers import all_rows

HONEST = "Sorry, the team has not answered yet; they will follow up here."


async def test_two_replicas_run_the_follow_ups_of_a_case_once(start, slack, model):
    both = timers(remind_after="1s", max_reminders=1, escalate_after="2s", give_up_after="4s")
    first = await start(timers=both)
    second = await start(timers=both)
    ts, post = await ask(slack, model, honest(HONEST))

    await slack.wait_for_message(SUPPORT, thread_ts=post["ts"],
                                 predicate=lambda m: "Reminder 1/1" in m["text"])
    await slack.wait_for_message(SUPPORT, predicate=lambda m: "has waited" in m["text"])
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == HONEST)
    # Both replicas keep checking; nothing is left to claim.
    assert await first.followups.run_due() == 0
    assert await second.followups.run_due() == 0
    await first.services.idle()
    await second.services.idle()

    assert len(thread_posts_with(slack, post["ts"], ":bell: Reminder")) == 1
    assert len([m for m in bot_posts(slack, SUPPORT) if "has waited" in m["text"]]) == 1
    assert len(thread_posts_with(slack, post["ts"], "Nobody answered")) == 1
    assert len([m for m in bot_posts(slack, CUSTOMERS, ts) if m["text"] == HONEST]) == 1
    assert len(model.requests) == 2


async def test_replicas_checking_at_the_same_moment_claim_each_row_once(start, slack, model):
    # The timers are paused after the start-up check; the test makes the replicas race.
    quiet = timers(remind_after="1s", max_reminders=1, escalate_after="1s",
                   give_up_after="3s", check_every="1h")
    first = await start(timers=quiet)
    second = await start(timers=quiet)
    await first.scheduler.pause()
    await second.scheduler.pause()
    ts, post = await ask(slack, model, honest(HONEST))
    request = await the_request(first)
    await wait_until(request.escalate_at)

    reminded = await asyncio.gather(*(bot.followups.remind()
                                      for bot in (first, second, first, second)))
    escalated = await asyncio.gather(*(bot.followups.escalate()
                                       for bot in (first, second, first, second)))
    assert sum(reminded) == 1 and sum(escalated) == 1

    await wait_until(request.give_up_at)
    given_up = await asyncio.gather(*(bot.followups.give_up()
                                      for bot in (first, second, first, second)))
    assert sum(given_up) == 1
    await slack.wait_for_message(CUSTOMERS, thread_ts=ts, predicate=lambda m: m["text"] == HONEST)
    await first.services.idle()
    await second.services.idle()

    assert len(thread_posts_with(slack, post["ts"], ":bell: Reminder")) == 1
    assert len([m for m in bot_posts(slack, SUPPORT) if "has waited" in m["text"]]) == 1
    assert [r.status for r in await all_rows(first, HumanRequest)] == ["expired"]
    assert len(model.requests) == 2
