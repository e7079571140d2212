"""Issue 6: follow-up timers live in the database; a restart neither loses nor repeats them."""

from __future__ import annotations

import re

from storage.models import utcnow
from tests.conftest import SUPPORT
from tests.e2e.followup_helpers import ask, the_request, thread_posts_with, timers, wait_until

TIMERS = timers(remind_after="2s", max_reminders=2)


async def test_a_reminder_due_during_downtime_fires_once_on_start_up(start, slack, model):
    # The first bot's timer is paused after its start-up check: it stops before any reminder.
    first = await start(timers={**TIMERS, "check_every": "1h"})
    await first.scheduler.pause()
    _, post = await ask(slack, model)
    thread = post["ts"]
    await first.stop()
    request = await the_request(first)
    assert request.reminders_sent == 0
    # Down for longer than two reminder intervals.
    await wait_until(request.remind_at + (request.remind_at - request.created_at))

    second = await start(timers=TIMERS)
    started = utcnow()
    await slack.wait_for_message(SUPPORT, thread_ts=thread,
                                 predicate=lambda m: "Reminder 1/2" in m["text"])
    request = await the_request(second)
    # One reminder for the downtime, not one per missed interval; the next is counted anew.
    assert request.reminders_sent == 1 and request.remind_at > started
    assert len(thread_posts_with(slack, thread, ":bell: Reminder")) == 1

    # Restarting again repeats nothing and loses nothing: the second reminder still comes.
    await second.stop()
    third = await start(timers=TIMERS)
    await slack.wait_for_message(SUPPORT, thread_ts=thread,
                                 predicate=lambda m: "Reminder 2/2" in m["text"])
    assert await third.followups.run_due() == 0
    await third.services.idle()
    assert [re.search(r"Reminder \d/\d", m["text"]).group() for m in thread_posts_with(
        slack, thread, ":bell: Reminder")] == ["Reminder 1/2", "Reminder 2/2"]
    request = await the_request(third)
    assert (request.reminders_sent, request.remind_at) == (2, None)
